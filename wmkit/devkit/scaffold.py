"""``wmkit new-plugin``: write a small, working plugin package to start a new component from.

A plugin called NAME becomes the folder NAME/ with four files:

    pyproject.toml          the distribution wmkit-BASE, with BASE in the ``wmkit`` group
    wmkit_BASE.py           the component (or environment) and its ``wmkit_register`` hook
    tests/test_wmkit_BASE.py  wmkit's contract check for the role, and the registration
    README.md               how to install it and select it in a recipe

BASE is NAME without a leading 'wmkit-' or 'wmkit_', so the prefix is never doubled; it is
written with '_' in the component, entry-point and module names, and with '-' in the
distribution's (``PluginNames``). Each template below is the
smallest real component of its kind: it passes ``wmkit.devkit.testing``'s contract check and runs a
whole recipe, so a plugin author starts from something that works and changes the maths.
The templates are ``string.Template`` text: ``$module``, ``$cls``, ``$component`` and the
other ``$`` names are filled in from NAME, and nothing else in them may contain a dollar.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from string import Template

from wmkit.core.errors import WmkitError

NAME_PATTERN = re.compile(r"[a-z](?:[a-z0-9_-]*[a-z0-9])?")


@dataclass(frozen=True)
class PluginNames:
    """Every name derived from the NAME a user types. BASE is NAME without a leading
    'wmkit-' or 'wmkit_': 'wmkit-cat-mem', 'wmkit_cat_mem', 'cat-mem' and 'cat_mem' all
    give the module wmkit_cat_mem and the distribution wmkit-cat-mem."""

    name: str  # NAME as typed: the folder
    distribution: str  # wmkit-BASE, '_' -> '-': what pip installs
    module: str  # wmkit_BASE, '-' -> '_': the module that holds the hook
    component: str  # BASE, '-' -> '_': what a recipe selects, and the entry point's name
    cls: str  # BASE in CamelCase: the component's class
    env_id: str  # BASE-v0: the gymnasium id, for an env plugin

    @classmethod
    def from_name(cls, name: str) -> PluginNames:
        if not NAME_PATTERN.fullmatch(name):
            raise WmkitError(
                f"plugin name {name!r}: use lowercase letters, digits, '-' and '_', starting "
                "with a letter and ending with a letter or digit (e.g. 'small-vae')"
            )
        base = re.sub(r"^wmkit[-_](?=[a-z])", "", name)
        snake, kebab = base.replace("-", "_"), base.replace("_", "-")
        camel = "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_]", base))
        return cls(name, f"wmkit-{kebab}", f"wmkit_{snake}", snake, camel, f"{base}-v0")


@dataclass
class Scaffold:
    """What ``write_plugin`` wrote: the folder, its files, and how a recipe selects it."""

    folder: Path
    files: list[Path]
    names: PluginNames
    kind: str

    @property
    def selection(self) -> str:
        """The recipe line that selects the plugin."""
        return _selection(self.names, self.kind)


def _selection(names: PluginNames, kind: str) -> str:
    if kind == "env":
        return f"env: {{id: {names.env_id}, crop: [0, 0, 0, 0]}}"
    return f"{kind}: {{name: {names.component}}}"


def plugin_files(name: str, kind: str) -> dict[str, str]:
    """The plugin package's files, by path relative to its folder, as text."""
    if kind not in KINDS:
        raise WmkitError(f"plugin kind {kind!r}: choose one of {', '.join(KINDS)}")
    names = PluginNames.from_name(name)
    module, test = TEMPLATES[kind]
    values = {
        **vars(names),
        "kind": kind,
        "summary": SUMMARIES[kind],
        "selection": _selection(names, kind),
    }

    def fill(template: str) -> str:
        return Template(template).substitute(values)

    files = {
        "pyproject.toml": fill(PYPROJECT),
        f"{names.module}.py": fill(module),
        f"tests/test_{names.module}.py": fill(test),
        "README.md": fill(README),
    }
    for path in (f"{names.module}.py", f"tests/test_{names.module}.py"):
        bound = _top_level_names(files[path])
        for clash in (names.cls, f"{names.cls}Options"):
            if bound.count(clash) > 1:  # e.g. NAME 'prediction' would shadow Prediction
                raise WmkitError(
                    f"plugin name {name!r}: its class {clash!r} would shadow a name the "
                    f"{kind} template uses; pick another NAME"
                )
    return files


def _top_level_names(source: str) -> list[str]:
    """Every name a module binds at its top level, once per binding."""
    bound = []
    for node in ast.parse(source).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            bound += [(alias.asname or alias.name).split(".")[0] for alias in node.names]
        elif isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            bound.append(node.name)
        elif isinstance(node, ast.Assign):
            bound += [n.id for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    return bound


def write_plugin(name: str, kind: str, out: Path) -> Scaffold:
    """Write the plugin NAME of ``kind`` into ``out/NAME``; nothing is written on an error."""
    files = plugin_files(name, kind)
    names = PluginNames.from_name(name)
    folder = Path(out) / name
    if folder.exists():
        raise WmkitError(f"{folder}: already exists; pick another NAME or --out folder")
    _check_free(names, kind)
    try:
        folder.mkdir(parents=True)
    except OSError as exc:
        raise WmkitError(f"{folder}: cannot create the plugin folder: {exc}") from None
    try:
        for relative, text in files.items():
            path = folder / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    except OSError as exc:
        shutil.rmtree(folder, ignore_errors=True)  # no half-written plugin left behind
        raise WmkitError(f"{folder}: cannot write the plugin: {exc}") from None
    return Scaffold(folder, [Path(p) for p in files], names, kind)


def _check_free(names: PluginNames, kind: str) -> None:
    """Refuse names that are already taken: the new plugin would fail its own tests."""
    if importlib.util.find_spec(names.module) is not None:
        raise WmkitError(
            f"plugin name {names.name!r}: a module {names.module!r} already exists; pick "
            "another NAME"
        )
    from wmkit.core.plugins import get_registry

    registry = get_registry()
    if kind == "env":
        import gymnasium

        if names.env_id in registry.envs or names.env_id in gymnasium.registry:
            raise WmkitError(
                f"plugin name {names.name!r}: environment {names.env_id!r} already exists; "
                "pick another NAME"
            )
    elif names.component in registry.components[kind]:
        origin = registry.origins[(kind, names.component)]
        raise WmkitError(
            f"plugin name {names.name!r}: {kind} {names.component!r} is already provided by "
            f"plugin {origin!r}; pick another NAME"
        )
    elif (kind, names.component) in registry.clashes:
        raise WmkitError(
            f"plugin name {names.name!r}: {registry.clash_error(kind, names.component)}; "
            "pick another NAME"
        )


SUMMARIES = {
    "vision": "a small convolutional VAE",
    "memory": "a GRU with a diagonal-Gaussian next-latent head",
    "controller": "a linear controller squashed into the action box",
    "optimizer": "a (mu, lambda) evolution strategy",
    "env": "a tiny dot-chasing environment with 64x64 RGB frames",
}

PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "$distribution"
version = "0.1.0"
description = "A wmkit $kind plugin: $summary."
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["wmkit"]

[project.optional-dependencies]
test = ["pytest>=8"]

# How wmkit finds the plugin: the entry point's name, and the module that holds the hook.
[project.entry-points.wmkit]
$component = "$module"

[tool.setuptools]
py-modules = ["$module"]

[tool.pytest.ini_options]
pythonpath = ["."]
# As in wmkit's own pyproject: box2d's SWIG types warn when gymnasium imports them.
filterwarnings = ["ignore:builtin type .* has no __module__ attribute:DeprecationWarning"]

[tool.ruff]
line-length = 100
"""

README = """\
# $distribution

A wmkit $kind plugin: $summary (`$module.py`).

Install it where wmkit is installed, then check that wmkit finds it and that it passes its tests:

    pip install -e .
    wmkit plugins      # '$component' is listed with status ok
    pytest tests       # wmkit's contract check for its role

Select it in a recipe with `$selection`.
To try it without installing, put this folder on PYTHONPATH and add `plugins: [$module]` to the
recipe.
"""

VISION = '''\
"""A small convolutional VAE: a vision (V) component for wmkit.

Frames [B, C, H, W] in [0, 1] go through three stride-2 convolutions to the mean and the
log-variance of a latent z; three transposed convolutions bring z back up to a frame, and a
sigmoid keeps it in [0, 1]. Training minimises the pixel error plus the KL divergence of
the posterior from the prior N(0, I):

    z = mu + sigma * eps,   eps ~ N(0, I)
    loss = sum_pixels (decode(z) - x)^2 + kl_weight * KL(N(mu, sigma^2) || N(0, I))

A recipe selects it with

    $selection
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
import wmkit
from pydantic import Field
from torch import nn
from wmkit.core.errors import WmkitError
from wmkit.nn.optim_state import load_optimizer_tensors, optimizer_tensors
from wmkit.core.protocols import VisionOptions


class ${cls}Options(VisionOptions):
    z_dim: int = Field(16, ge=1, description="Size of the latent z.")
    channels: int = Field(
        16, ge=1, description="Channels of the first convolution; each next one doubles."
    )
    kl_weight: float = Field(1.0, ge=0, description="Weight of the KL term in the loss.")
    learning_rate: float = Field(1e-3, gt=0, description="Adam learning rate.")


class $cls(nn.Module):
    name = "$component"
    Options = ${cls}Options

    def __init__(self, options: ${cls}Options, frame_shape: tuple[int, int, int]):
        super().__init__()
        channels, height, width = frame_shape
        if height % 8 or width % 8:
            raise WmkitError(f"vision: {self.name} needs sides divisible by 8, got {frame_shape}")
        self.options = options
        self.latent_dim = options.z_dim
        c = options.channels
        # Each stride-2 convolution halves the sides (64 -> 32 -> 16 -> 8 on 64x64 frames).
        self.grid = (4 * c, height // 8, width // 8)
        flat = 4 * c * (height // 8) * (width // 8)
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, c, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(c, 2 * c, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(2 * c, 4 * c, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        self.to_mu = nn.Linear(flat, options.z_dim)
        self.to_logvar = nn.Linear(flat, options.z_dim)
        self.from_z = nn.Linear(options.z_dim, flat)
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(4 * c, 2 * c, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(c, channels, 4, stride=2, padding=1),
            nn.Sigmoid(),
        )
        self.adam: torch.optim.Optimizer | None = None

    def encode(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(frames)
        return self.to_mu(h), self.to_logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.from_z(z).view(-1, *self.grid))

    def loss(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        mu, logvar = self.encode(frames)
        z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
        recon = F.mse_loss(self.decode(z), frames, reduction="none").sum(dim=(1, 2, 3)).mean()
        kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)).mean()
        return {"loss": recon + self.options.kl_weight * kl, "recon": recon, "kl": kl}

    def _adam(self) -> torch.optim.Optimizer:
        # Made on first use, after the pipeline has moved the model to its device.
        if self.adam is None:
            self.adam = torch.optim.Adam(self.parameters(), lr=self.options.learning_rate)
        return self.adam

    def train_state_dict(self) -> dict[str, torch.Tensor]:
        """Adam's moments as named tensors: the pipeline saves them with the weights after
        every epoch, so a run resumed after a crash trains on as if never stopped."""
        return optimizer_tensors(self._adam())

    def load_train_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        load_optimizer_tensors(self._adam(), state)

    def fit_epoch(self, batches: Iterable[torch.Tensor]) -> dict[str, float]:
        adam = self._adam()
        totals: dict[str, float] = {}
        n = 0
        for frames in batches:
            losses = self.loss(frames)
            adam.zero_grad()
            losses["loss"].backward()
            adam.step()
            for key, value in losses.items():
                totals[key] = totals.get(key, 0.0) + value.item()
            n += 1
        return {key: total / max(n, 1) for key, total in totals.items()}


@wmkit.hookimpl
def wmkit_register(registry):
    registry.add_vision($cls)
'''

VISION_TEST = '''\
"""Tests of $module: wmkit's contract check for a vision component, and registration."""

from __future__ import annotations

from wmkit.core.plugins import load_plugins
from wmkit.devkit.testing import check_vision

import $module
from $module import $cls


def test_passes_the_vision_contract():
    vision = $cls($cls.Options(), frame_shape=(3, 64, 64))
    check_vision(vision, frame_shape=(3, 64, 64))


def test_registers_with_wmkit(monkeypatch):
    # Only wmkit's own plugins and this module, whether or not this package is installed.
    monkeypatch.setenv("WMKIT_DISABLE_PLUGIN_AUTOLOAD", "1")
    registry = load_plugins(extra=[$module]).registry
    assert registry.get("vision", "$component") is $cls
'''

MEMORY = '''\
"""A GRU with a diagonal-Gaussian next-latent head: a memory (M) component for wmkit.

A GRU reads [z_t, a_t]; its hidden state h_t is what the controller sees. One linear head
on h_t predicts the next latent as an independent Gaussian per dimension, the reward, and
the probability that the episode ends:

    z_{t+1} ~ N(mu(h_t), sigma(h_t)^2)     r_t = r(h_t)     p(done_t) = sigmoid(d(h_t))

Sampling at temperature tau scales sigma by sqrt(tau): a higher tau is a more uncertain
dream. Training minimises the Gaussian negative log-likelihood of z_{t+1}, the reward's
squared error and the done flag's cross-entropy. A recipe selects it with

    $selection
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
import wmkit
from pydantic import Field
from torch import nn
from wmkit.nn.optim_state import load_optimizer_tensors, optimizer_tensors
from wmkit.core.protocols import MemoryOptions, Prediction, SequenceBatch, masked_mean

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class ${cls}Options(MemoryOptions):
    hidden: int = Field(64, ge=1, description="GRU hidden size: the features C sees.")
    learning_rate: float = Field(1e-3, gt=0, description="Adam learning rate.")
    grad_clip: float = Field(1.0, gt=0, description="Gradient norm clip.")


class $cls(nn.Module):
    name = "$component"
    Options = ${cls}Options

    def __init__(self, options: ${cls}Options, latent_dim: int, action_dim: int):
        super().__init__()
        self.options = options
        self.latent_dim, self.action_dim = latent_dim, action_dim
        self.feature_dim = options.hidden
        self.gru = nn.GRU(latent_dim + action_dim, options.hidden, batch_first=True)
        # Per step: a mean and a log std per latent dimension, then the reward and done logit.
        self.head = nn.Linear(options.hidden, 2 * latent_dim + 2)
        # Episodes rarely end: start at p(done) ~ 0.7%, so an untrained dream does not stop.
        with torch.no_grad():
            self.head.bias[-1] = -5.0
        self.adam: torch.optim.Optimizer | None = None

    def forward(self, z: torch.Tensor, action: torch.Tensor, h: torch.Tensor | None = None):
        """Whole sequences [B, T, .]: next-latent mean and std, reward, done logit per step."""
        out, h = self.gru(torch.cat([z, action.to(z.dtype)], dim=-1), h)
        params = self.head(out)
        zd = self.latent_dim
        mu, sigma = params[..., :zd], params[..., zd : 2 * zd].clamp(-8, 8).exp()
        return (mu, sigma, params[..., -2], params[..., -1]), h

    def initial_state(self, batch_size: int) -> torch.Tensor:
        p = next(self.parameters())
        return torch.zeros(1, batch_size, self.options.hidden, device=p.device, dtype=p.dtype)

    def step(self, z: torch.Tensor, action: torch.Tensor, state: torch.Tensor):
        (mu, sigma, reward, done_logit), state = self(z.unsqueeze(1), action.unsqueeze(1), state)
        prediction = Prediction(
            reward=reward[:, 0],
            done=torch.sigmoid(done_logit[:, 0]),
            params={"mu": mu[:, 0], "sigma": sigma[:, 0]},
        )
        return prediction, state

    def features(self, state: torch.Tensor) -> torch.Tensor:
        return state[0]

    def sample(
        self,
        prediction: Prediction,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        mu, sigma = prediction.params["mu"], prediction.params["sigma"]
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + sigma * math.sqrt(temperature) * eps

    def loss(self, batch: SequenceBatch) -> dict[str, torch.Tensor]:
        # Every step predicts its reward and done (an episode's last step is where done is
        # 1); all but the last also the next latent. batch.mask is 0 on padding.
        (mu, sigma, reward, done_logit), _ = self(batch.z, batch.action)
        mu, sigma, target = mu[:, :-1], sigma[:, :-1], batch.z[:, 1:]
        nll = masked_mean(
            0.5 * ((target - mu) / sigma) ** 2 + sigma.log() + LOG_SQRT_2PI, batch.mask[:, 1:]
        )
        reward_mse = masked_mean((reward - batch.reward.to(reward.dtype)) ** 2, batch.mask)
        done_bce = masked_mean(
            F.binary_cross_entropy_with_logits(
                done_logit, batch.done.to(done_logit.dtype), reduction="none"
            ),
            batch.mask,
        )
        loss = nll + reward_mse + done_bce
        return {"loss": loss, "nll": nll, "reward_mse": reward_mse, "done_bce": done_bce}

    def _adam(self) -> torch.optim.Optimizer:
        # Made on first use, after the pipeline has moved the model to its device.
        if self.adam is None:
            self.adam = torch.optim.Adam(self.parameters(), lr=self.options.learning_rate)
        return self.adam

    def train_state_dict(self) -> dict[str, torch.Tensor]:
        """Adam's moments as named tensors: the pipeline saves them with the weights after
        every epoch, so a run resumed after a crash trains on as if never stopped."""
        return optimizer_tensors(self._adam())

    def load_train_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        load_optimizer_tensors(self._adam(), state)

    def fit_epoch(self, batches: Iterable[SequenceBatch]) -> dict[str, float]:
        adam = self._adam()
        totals: dict[str, float] = {}
        n = 0
        for batch in batches:
            losses = self.loss(batch)
            adam.zero_grad()
            losses["loss"].backward()
            nn.utils.clip_grad_norm_(self.parameters(), self.options.grad_clip)
            adam.step()
            for key, value in losses.items():
                totals[key] = totals.get(key, 0.0) + value.item()
            n += 1
        return {key: total / max(n, 1) for key, total in totals.items()}


@wmkit.hookimpl
def wmkit_register(registry):
    registry.add_memory($cls)
'''

MEMORY_TEST = '''\
"""Tests of $module: wmkit's contract check for a memory component, and registration."""

from __future__ import annotations

from wmkit.core.plugins import load_plugins
from wmkit.devkit.testing import check_memory

import $module
from $module import $cls


def test_passes_the_memory_contract():
    memory = $cls($cls.Options(hidden=16), latent_dim=8, action_dim=3)
    check_memory(memory, latent_dim=8, action_dim=3)


def test_registers_with_wmkit(monkeypatch):
    # Only wmkit's own plugins and this module, whether or not this package is installed.
    monkeypatch.setenv("WMKIT_DISABLE_PLUGIN_AUTOLOAD", "1")
    registry = load_plugins(extra=[$module]).registry
    assert registry.get("memory", "$component") is $cls
'''

CONTROLLER = '''\
"""A linear controller (C) for wmkit, squashed by tanh into the action box.

One linear layer on the features [z, h], squashed by tanh and rescaled onto the action box:

    a = low + (tanh(W [z, h] + b) + 1) / 2 * (high - low)

W and b, flattened into one vector, are what the optimizer searches. A recipe selects it
with

    $selection
"""

from __future__ import annotations

import numpy as np
import torch
import wmkit
from pydantic import Field
from torch import nn
from wmkit.core.protocols import ControllerOptions


class ${cls}Options(ControllerOptions):
    init_std: float = Field(
        0.1, ge=0, description="Standard deviation of the initial weights (biases start at 0)."
    )


class $cls(nn.Module):
    name = "$component"
    Options = ${cls}Options

    def __init__(
        self,
        options: ${cls}Options,
        input_dim: int,
        action_low: np.ndarray,
        action_high: np.ndarray,
    ):
        super().__init__()
        self.options = options
        self.linear = nn.Linear(input_dim, len(action_low))
        nn.init.normal_(self.linear.weight, std=options.init_std)
        nn.init.zeros_(self.linear.bias)
        self.register_buffer("low", torch.as_tensor(action_low, dtype=torch.float32))
        self.register_buffer("high", torch.as_tensor(action_high, dtype=torch.float32))
        self.num_params = sum(p.numel() for p in self.parameters())

    def _rescale(self, y: torch.Tensor) -> torch.Tensor:
        """tanh's (-1, 1) onto [low, high]."""
        return self.low + (torch.tanh(y) + 1) * 0.5 * (self.high - self.low)

    @torch.no_grad()
    def act(self, features: torch.Tensor) -> torch.Tensor:
        return self._rescale(self.linear(features.float()))

    @torch.no_grad()
    def act_batched(self, params: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Row i acts with its own parameters ``params[i]`` (laid out as ``get_params``):
        a dream scores a whole generation in one batched matrix product."""
        a, f = self.linear.weight.shape
        weight = params[:, : a * f].reshape(-1, a, f).to(features.dtype)
        bias = params[:, a * f :].to(features.dtype)
        y = torch.baddbmm(bias.unsqueeze(2), weight, features.unsqueeze(2)).squeeze(2)
        return self._rescale(y)

    def get_params(self) -> np.ndarray:
        return nn.utils.parameters_to_vector(self.parameters()).detach().cpu().double().numpy()

    def set_params(self, params: np.ndarray) -> None:
        vec = torch.as_tensor(np.asarray(params), dtype=torch.float32)
        if vec.numel() != self.num_params:
            raise ValueError(f"expected {self.num_params} parameters, got {vec.numel()}")
        # .to(): a dream may have moved the controller to the run's device.
        nn.utils.vector_to_parameters(vec.to(self.low.device), self.parameters())


@wmkit.hookimpl
def wmkit_register(registry):
    registry.add_controller($cls)
'''

CONTROLLER_TEST = '''\
"""Tests of $module: wmkit's contract check for a controller, and registration."""

from __future__ import annotations

import numpy as np
import torch
from wmkit.core.plugins import load_plugins
from wmkit.devkit.testing import check_controller

import $module
from $module import $cls

LOW = np.array([-1.0, 0.0, 0.0], np.float32)
HIGH = np.array([1.0, 1.0, 1.0], np.float32)


def test_passes_the_controller_contract():
    controller = $cls($cls.Options(), 24, LOW, HIGH)
    check_controller(controller, 24, LOW, HIGH)


def test_act_batched_matches_act_row_by_row():
    controller = $cls($cls.Options(), 24, LOW, HIGH)
    rng = np.random.default_rng(0)
    params = rng.standard_normal((4, controller.num_params))
    features = torch.randn(4, 24, generator=torch.Generator().manual_seed(0))
    batched = controller.act_batched(torch.as_tensor(params), features)
    for i in range(4):
        controller.set_params(params[i])
        torch.testing.assert_close(batched[i : i + 1], controller.act(features[i : i + 1]))


def test_registers_with_wmkit(monkeypatch):
    # Only wmkit's own plugins and this module, whether or not this package is installed.
    monkeypatch.setenv("WMKIT_DISABLE_PLUGIN_AUTOLOAD", "1")
    registry = load_plugins(extra=[$module]).registry
    assert registry.get("controller", "$component") is $cls
'''

OPTIMIZER = '''\
"""A (mu, lambda) evolution strategy: an optimizer for wmkit controllers.

Each generation samples lambda (``population``) candidates around the mean, keeps the mu
with the highest returns, and moves the mean to their average:

    x_i = mean + sigma * eps_i,   eps_i ~ N(0, I),   i = 1..lambda
    mean <- average of the mu best x_i          sigma <- sigma * sigma_decay

Sampling uses a private random stream seeded at construction. ``state_dict`` holds that
stream's state with the mean, sigma and the best candidate, so a resumed search asks exactly
what the uninterrupted one would have. A recipe selects it with

    $selection
"""

from __future__ import annotations

import numpy as np
import wmkit
from pydantic import Field
from wmkit.core.protocols import OptimizerOptions


class ${cls}Options(OptimizerOptions):
    sigma0: float = Field(0.1, gt=0, description="Initial standard deviation of the search.")
    sigma_decay: float = Field(
        0.99, gt=0, le=1, description="Factor applied to sigma after every generation."
    )
    elite_fraction: float = Field(
        0.25, gt=0, le=1, description="mu / lambda: the share of candidates kept as parents."
    )


class $cls:
    name = "$component"
    Options = ${cls}Options

    def __init__(self, options: ${cls}Options, x0: np.ndarray, seed: int):
        self.options = options
        self.mean = np.array(x0, dtype=float)
        self.sigma = float(options.sigma0)
        self.rng = np.random.RandomState(seed)
        self.best_x, self.best_f = self.mean.copy(), float("-inf")

    def ask(self) -> list[np.ndarray]:
        eps = self.rng.standard_normal((self.options.population, len(self.mean)))
        return list(self.mean + self.sigma * eps)

    def tell(self, solutions: list[np.ndarray], returns: list[float]) -> None:
        returns_ = np.nan_to_num(np.asarray(returns, dtype=float), nan=-np.inf)
        order = np.argsort(-returns_, kind="stable")
        mu = max(1, round(self.options.elite_fraction * len(solutions)))
        self.mean = np.mean([solutions[i] for i in order[:mu]], axis=0)
        self.sigma *= self.options.sigma_decay
        if returns_[order[0]] > self.best_f:
            self.best_x = np.array(solutions[order[0]], dtype=float)
            self.best_f = float(returns_[order[0]])

    def stop(self) -> bool:
        return False  # the recipe's ``generations`` bounds the search

    def result(self) -> tuple[np.ndarray, float]:
        return self.best_x.copy(), self.best_f

    def state_dict(self) -> dict[str, np.ndarray]:
        _, keys, pos, has_gauss, cached_gauss = self.rng.get_state()
        return {
            "mean": self.mean.copy(),
            "sigma": np.array(self.sigma),
            "best_x": self.best_x.copy(),
            "best_f": np.array(self.best_f),
            "rng_keys": keys.astype(np.int64),
            "rng_pos": np.array([pos, has_gauss], dtype=np.int64),
            "rng_gauss": np.array(cached_gauss, dtype=float),
        }

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.mean = np.array(state["mean"], dtype=float)
        self.sigma = float(state["sigma"])
        self.best_x = np.array(state["best_x"], dtype=float)
        self.best_f = float(state["best_f"])
        pos, has_gauss = (int(v) for v in state["rng_pos"])
        keys = np.asarray(state["rng_keys"]).astype(np.uint32)
        self.rng.set_state(("MT19937", keys, pos, has_gauss, float(state["rng_gauss"])))


@wmkit.hookimpl
def wmkit_register(registry):
    registry.add_optimizer($cls)
'''

OPTIMIZER_TEST = '''\
"""Tests of $module: wmkit's contract check for an optimizer, and registration."""

from __future__ import annotations

import numpy as np
from wmkit.core.plugins import load_plugins
from wmkit.devkit.testing import check_optimizer

import $module
from $module import $cls


def test_passes_the_optimizer_contract():
    options = $cls.Options(population=8)
    # ``fresh`` starts elsewhere with another seed: loading the state must override both.
    check_optimizer(
        $cls(options, np.zeros(5), seed=1),
        fresh=$cls(options, np.ones(5), seed=2),
    )


def test_improves_a_simple_function():
    es = $cls($cls.Options(population=16, sigma0=0.5), np.zeros(4), seed=0)
    for _ in range(40):
        xs = es.ask()
        es.tell(xs, [-float(np.sum((x - 1.0) ** 2)) for x in xs])
    assert es.result()[1] > -0.2


def test_registers_with_wmkit(monkeypatch):
    # Only wmkit's own plugins and this module, whether or not this package is installed.
    monkeypatch.setenv("WMKIT_DISABLE_PLUGIN_AUTOLOAD", "1")
    registry = load_plugins(extra=[$module]).registry
    assert registry.get("optimizer", "$component") is $cls
'''

ENV = '''\
"""A tiny gymnasium environment for wmkit: a dot chase with 64x64 RGB frames.

A red dot chases a green one on a 64 x 64 field. The action is the red dot's velocity
(dx, dy) in [-1, 1]^2, times ``speed`` pixels per step; the reward is the distance gained on
the green dot, and the episode ends when the dots touch. Observations are the rendered
frames, 64 x 64 x 3 uint8, which is what wmkit's vision components read.

``wmkit_register`` registers it as ``$env_id``, and a recipe selects it with

    $selection
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium
import numpy as np
import wmkit
from gymnasium import spaces

SIZE = 64
BACKGROUND, CHASER, TARGET = (30, 30, 30), (220, 50, 50), (50, 200, 50)


class $cls(gymnasium.Env):
    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(self, render_mode: str | None = None, speed: float = 3.0, radius: float = 4.0):
        self.render_mode = render_mode
        self.speed, self.radius = speed, radius
        self.observation_space = spaces.Box(0, 255, (SIZE, SIZE, 3), np.uint8)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.rows, self.cols = np.mgrid[0:SIZE, 0:SIZE]
        self.chaser = self.target = np.full(2, SIZE / 2)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.chaser = self.np_random.uniform(self.radius, SIZE - self.radius, 2)
        self.target = self.np_random.uniform(self.radius, SIZE - self.radius, 2)
        return self._frame(), {}

    def step(self, action: np.ndarray):
        before = np.linalg.norm(self.target - self.chaser)
        move = np.clip(np.asarray(action, dtype=float), -1.0, 1.0) * self.speed
        self.chaser = np.clip(self.chaser + move, 0.0, SIZE - 1.0)
        after = np.linalg.norm(self.target - self.chaser)
        terminated = bool(after < 2 * self.radius)
        return self._frame(), float(before - after), terminated, False, {}

    def render(self) -> np.ndarray | None:
        return self._frame() if self.render_mode == "rgb_array" else None

    def _frame(self) -> np.ndarray:
        frame = np.empty((SIZE, SIZE, 3), np.uint8)
        frame[:] = BACKGROUND
        for (x, y), colour in ((self.target, TARGET), (self.chaser, CHASER)):
            disk = (self.cols - x) ** 2 + (self.rows - y) ** 2 <= self.radius**2
            frame[disk] = colour
        return frame


@wmkit.hookimpl
def wmkit_register(registry):
    registry.add_env("$env_id", entry_point="$module:$cls", max_episode_steps=200)
'''

ENV_TEST = '''\
"""Tests of $module: gymnasium's environment checker, and registration with wmkit."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from wmkit.core.plugins import load_plugins

import $module
from $module import $cls


# It has a single render mode, so there are no alternative ones to check.
@pytest.mark.filterwarnings("ignore:.*alternative render modes")
def test_passes_the_gymnasium_env_checker():
    check_env($cls(render_mode="rgb_array"))


def test_frames_are_64x64_rgb():
    env = $cls()
    frame, _ = env.reset(seed=0)
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8
    frame, reward, terminated, truncated, _ = env.step(env.action_space.sample())
    assert frame.shape == (64, 64, 3) and isinstance(reward, float)
    assert isinstance(terminated, bool) and truncated is False


def test_registers_with_wmkit(monkeypatch):
    # Only wmkit's own plugins and this module, whether or not this package is installed.
    monkeypatch.setenv("WMKIT_DISABLE_PLUGIN_AUTOLOAD", "1")
    registry = load_plugins(extra=[$module]).registry
    entry = registry.envs["$env_id"]
    assert entry.entry_point == "$module:$cls" and entry.max_episode_steps == 200
'''

TEMPLATES = {
    "vision": (VISION, VISION_TEST),
    "memory": (MEMORY, MEMORY_TEST),
    "controller": (CONTROLLER, CONTROLLER_TEST),
    "optimizer": (OPTIMIZER, OPTIMIZER_TEST),
    "env": (ENV, ENV_TEST),
}
# What ``wmkit new-plugin --kind`` offers: a role (or ``env``) has a kind once it has a
# template here.
KINDS = tuple(TEMPLATES)
