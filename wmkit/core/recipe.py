"""Recipes: YAML files validated by pydantic, one model per block.

``env``, ``collect`` and ``eval`` are core blocks. ``vision``, ``memory``, ``controller`` and
``optimizer`` name a component and are validated by that component's own ``Options`` model,
so a plugin's fields get the same checking and error messages as ours.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

from wmkit.core.errors import WmkitError
from wmkit.core.protocols import ROLES, Options
from wmkit.core.registry import Registry

# Fields that change how fast a run goes (or where its metrics are mirrored), never what it
# computes.
NOT_IDENTITY = ("device", "workers", "task_timeout", "task_retries", "executor", "sinks")
# Fields that only add work after everything else: a finished run can take a sweep later.
ADDS_ONLY = (("dream", "sweep"), ("dream", "sweep_generations"))
# Fields inside a block that, like NOT_IDENTITY, change how fast a run goes, not what it computes.
SPEED_ONLY = (("dream", "graph"),)


def without_run_settings(data: dict[str, Any]) -> dict[str, Any]:
    """A resolved recipe (as in a run's recipe.yaml) minus NOT_IDENTITY, ADDS_ONLY and
    SPEED_ONLY."""
    data = {k: v for k, v in data.items() if k not in NOT_IDENTITY}
    for block, key in ADDS_ONLY + SPEED_ONLY:
        if isinstance(data.get(block), dict):
            data[block] = {k: v for k, v in data[block].items() if k != key}
    return data


# The pipeline a recipe without a ``pipeline`` block runs: the paper's.
DEFAULT_PIPELINE = "ha"


class EnvConfig(Options):
    """Which environment, and how its frames become the model's input."""

    id: str = Field("CarRacing-v3", description="Gymnasium environment id (or a plugin's).")
    frame_size: int = Field(64, ge=8, description="Frames are resized to this square size.")
    crop: tuple[int, int, int, int] = Field(
        (0, 0, 0, 0),
        description="Pixels cut from the top, bottom, left and right before resizing.",
    )
    max_episode_steps: int | None = Field(
        None, ge=1, description="Episode step cap; null keeps the environment's own."
    )
    action_repeat: int = Field(
        1,
        ge=1,
        description=(
            "Frames each action is held for, rewards summed; the agent sees the last frame. "
            "Step caps elsewhere (collect, eval, dream) count the agent's steps."
        ),
    )
    merge_actions: list[tuple[int, int]] = Field(
        default_factory=list,
        description=(
            "Pairs [i, j] of action dimensions whose lower bound is 0, each merged into one "
            "axis in [-high_j, high_i] at i's place: its positive part drives i, its negative "
            "part j (CarRacing's gas and brake: [[1, 2]], so a zero action is neither)."
        ),
    )
    kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Extra keyword arguments for gymnasium.make."
    )

    @field_validator("crop", mode="before")
    @classmethod
    def _four_margins(cls, value: Any) -> Any:
        if not isinstance(value, (list, tuple)) or len(value) != 4:
            raise ValueError("must be 4 pixel counts: [top, bottom, left, right]")
        if any(not isinstance(v, int) or v < 0 for v in value):
            raise ValueError("margins must be whole numbers >= 0")
        return value


class CollectConfig(Options):
    """Random-policy rollouts that V and M are trained on."""

    episodes: int = Field(10_000, ge=1, description="Number of rollouts to collect.")
    max_steps: int | None = Field(
        None, ge=1, description="Step cap per rollout; null uses the environment's limit."
    )
    policy: Literal["uniform", "brownian", "held", "controller"] = Field(
        "controller",
        description=(
            "uniform: independent random actions; brownian: actions that drift as "
            "Brownian motion; held: a uniform action kept for 1 to hold_max steps (the "
            "paper's Doom code); controller: a freshly initialised V, M and C (paper's "
            "CarRacing code)."
        ),
    )
    brownian_dt: float = Field(
        1 / 50, gt=0, description="Time step of the Brownian policy (noise scale sqrt(dt))."
    )
    hold_max: int = Field(
        10, ge=1, description="Longest hold of the held policy, in steps (the paper's 10)."
    )
    frame_skip_start: int = Field(
        0, ge=0, description="Leading frames of each rollout not stored (e.g. a zoom-in)."
    )


class EvalConfig(Options):
    """The final score: the trained agent over many real episodes."""

    episodes: int = Field(100, ge=1, description="Real-environment episodes to average.")
    seed: int = Field(
        1_000_000, ge=0, description="Seed of the first episode; episode i uses seed + i."
    )
    max_steps: int | None = Field(
        None, ge=1, description="Step cap per episode; null uses the environment's limit."
    )


class GuardConfig(Options):
    """The online exploit guard: real checks of the dream's ranking while C evolves in it."""

    every: int = Field(
        0,
        ge=0,
        description=(
            "Check after every this many dream generations; 0 turns the guard off (no real "
            "step is taken in the controller stage)."
        ),
    )
    candidates: int = Field(
        4,
        ge=2,
        description="Candidates of the generation played for real, spread over its dream ranking.",
    )
    episodes: int = Field(
        2, ge=1, description="Real episodes per picked candidate, on seeds used nowhere else."
    )
    stop_below: float | None = Field(
        None,
        ge=0,
        le=1,
        description=(
            "Stop the search when the share of pairs the dream orders as the game does stays "
            "below this; the controller of the last passing check is kept. null: only measure."
        ),
    )
    patience: int = Field(
        2, ge=1, description="Checks in a row below stop_below before the search stops."
    )


class DreamConfig(Options):
    """Rolling M forward as the environment: training C in it, and scoring C there."""

    temperature: float = Field(
        1.0, gt=0, description="tau: mixture logits / tau, standard deviations * sqrt(tau)."
    )
    max_steps: int = Field(1000, ge=1, description="Step cap of a dream episode.")
    done_threshold: float = Field(
        0.5, gt=0, le=1, description="A dream episode ends when M's done probability passes this."
    )
    ends: Literal["threshold", "sample"] = Field(
        "threshold",
        description=(
            "How a world model's dream episode ends (pipeline online: gap and dream): "
            "'threshold', when its done probability passes done_threshold; 'sample', with that "
            "probability at each step, for a continuation head that gives the chance of the "
            "end rather than reads it off a frame (rssm's continuation_input: deter)."
        ),
    )
    score_episodes: int = Field(
        100, ge=1, description="Dream episodes that give the final controller its dream score."
    )
    starts: Literal["first_frame", "anywhere"] = Field(
        "first_frame",
        description=(
            "Where the optimizer's fitness dreams begin: 'first_frame', at the first frame of "
            "a collected episode, dreaming the whole episode (up to max_steps); 'anywhere', "
            "at a random step of a collected episode, M's memory warmed up on the real steps "
            "before it, dreaming `horizon` steps (short dreams where the agent really went, "
            "which compound less of M's error). The dream score of evaluate always dreams "
            "whole episodes from first frames."
        ),
    )
    warmup: int = Field(
        16, ge=0, description="starts: anywhere: real steps fed to M before a start point."
    )
    horizon: int = Field(
        50, ge=1, description="starts: anywhere: steps dreamed from each start point."
    )
    sweep: list[float] = Field(
        default_factory=list,
        description=(
            "Temperatures to train a controller in the dream at, each then scored in the dream "
            "and in the real environment (the paper's Table 2); empty skips the sweep."
        ),
    )
    guard: GuardConfig = Field(
        default_factory=GuardConfig,
        description="The online exploit guard for controllers trained in the dream.",
    )
    sweep_generations: int | None = Field(
        None,
        ge=1,
        description=(
            "Optimizer generations per swept temperature; null uses optimizer.generations. "
            "A smaller budget compares temperatures at a fraction of the cost."
        ),
    )
    graph: bool = Field(
        False,
        description=(
            "On CUDA, replay the dream's steps as CUDA graphs (16 steps per launch, the same "
            "kernels and random numbers as without), and a gradient optimizer's imagination "
            "(actor_critic: one graph for its horizon, kept across updates); "
            "ignored on a CPU. Changes speed only."
        ),
    )

    @field_validator("sweep")
    @classmethod
    def _positive(cls, value: list[float]) -> list[float]:
        if any(t <= 0 for t in value):
            raise ValueError("temperatures must be > 0")
        if len({f"{t:g}" for t in value}) != len(value):
            raise ValueError("temperatures must be distinct")
        return value


class IterateConfig(Options):
    """The paper's iterative training procedure: rounds after the first play the last
    round's agent in the real environment and train M and C further on what it saw."""

    rounds: int = Field(
        1,
        ge=1,
        description=(
            "Passes of collect -> M -> C. 1 is the single pass from random rollouts; each "
            "further round collects with the last round's agent, adds those episodes to M's "
            "data, trains M further on all of it and C further in the new dream."
        ),
    )
    episodes: int = Field(
        200, ge=1, description="Real episodes each further round plays with the last agent."
    )
    candidates: int = Field(
        1,
        ge=1,
        description=(
            "Controllers each further round plays, taking turns by episode: the one the last "
            "round kept, then draws from the optimizer's search distribution around it."
        ),
    )
    memory_epochs: int = Field(
        10, ge=1, description="M epochs per further round, on all the data so far."
    )
    generations: int | None = Field(
        None,
        ge=1,
        description=(
            "Optimizer generations per further round, continuing the last round's search "
            "in the new dream; null uses optimizer.generations."
        ),
    )
    rollouts_per_candidate: int | None = Field(
        None,
        ge=1,
        description=(
            "Episodes (dreams) per candidate in further rounds' optimizer generations; null "
            "uses optimizer.rollouts_per_candidate. Later rounds' dreams rate candidates "
            "close together, so more of them make each comparison less noisy."
        ),
    )


class ComponentBlock(BaseModel):
    """A resolved component choice: its registered name and its validated options."""

    model_config = ConfigDict(extra="forbid")
    name: str
    options: Options


class RecipeCore(Options):
    """The fields of a recipe besides its component blocks (``Recipe`` adds one per role)."""

    plugins: list[str] = Field(
        default_factory=list,
        description=(
            "Python modules to import as wmkit plugins before components are looked up. "
            "This runs their code: name only modules you trust. Installed plugins (entry "
            "points) need no entry here."
        ),
    )
    name: str = Field(
        "run",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="Name of the run (letters, digits, _ . -); the default run directory.",
    )
    seed: int = Field(0, ge=0, description="Master seed; every random stream derives from it.")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where V and M train: auto picks CUDA when present."
    )
    workers: int | None = Field(
        None, ge=0, description="Rollout worker processes; null uses every core, 0 runs inline."
    )
    task_timeout: float | None = Field(
        900.0,
        gt=0,
        description="Seconds one rollout may take before its worker is replaced; null: no limit.",
    )
    task_retries: int = Field(
        2, ge=0, description="Times a rollout whose worker crashed or hung is retried."
    )
    sinks: list[str] = Field(
        default_factory=lambda: ["tensorboard"],
        description=(
            "Metric sinks that mirror metrics/*.jsonl (always written): tensorboard, or a "
            "plugin's, such as mlflow and wandb. A sink that fails warns once and is dropped."
        ),
    )
    env: EnvConfig = Field(default_factory=EnvConfig, description="The environment.")
    collect: CollectConfig = Field(default_factory=CollectConfig, description="Data collection.")
    eval: EvalConfig = Field(default_factory=EvalConfig, description="Final evaluation.")
    dream: DreamConfig = Field(default_factory=DreamConfig, description="Dreams in M.")
    iterate: IterateConfig = Field(
        default_factory=IterateConfig, description="Further rounds of collect -> M -> C."
    )

    def num_workers(self) -> int:
        return os.cpu_count() or 1 if self.workers is None else self.workers

    def to_dict(self) -> dict[str, Any]:
        """Plain data with every default filled in, as written to a run directory."""
        data = self.model_dump(mode="json", exclude=set(ROLES))
        for role in ROLES:
            block: ComponentBlock | None = getattr(self, role)
            if block is not None:
                data[role] = {"name": block.name, **block.options.model_dump(mode="json")}
        return data

    def blocks(self) -> dict[str, ComponentBlock]:
        """The component blocks this recipe fills (its pipeline's roles), by role."""
        return {role: b for role in ROLES if (b := getattr(self, role)) is not None}

    def identity(self) -> dict[str, Any]:
        """The resolved recipe without the fields that change speed but never results, nor
        the temperature sweep, which only adds a last stage."""
        return without_run_settings(self.to_dict())

    def digest(self) -> str:
        """A stable hash of what the run computes: a run directory belongs to one recipe."""
        text = json.dumps(self.identity(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


# A recipe: the core fields plus one optional block per role of the table. The pipeline's
# roles are filled (with defaults) by ``resolve_recipe``; the other roles stay None.
Recipe = create_model(
    "Recipe",
    __base__=RecipeCore,
    __doc__="A whole experiment: environment, data, the components and the evaluation.",
    **{
        role: (ComponentBlock | None, Field(None, description=spec.description))
        for role, spec in ROLES.items()
    },
)


class RecipeError(WmkitError):
    """One or more problems in a recipe, each as 'file: dotted.path: message (got value)'."""

    def __init__(self, source: str, problems: list[tuple[str, str, Any]]):
        self.source, self.problems = source, problems
        lines = []
        for path, message, value in problems:
            where = f"{source}: {path}" if path else source
            got = "" if value is _MISSING else f" (got {value!r})"
            lines.append(f"{where}: {message}{got}")
        super().__init__("\n".join(lines))


_MISSING = object()


def _dotted(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _is_union_tag(part: Any) -> bool:
    """pydantic names each member of a union in the error location (``list[int]``...)."""
    return isinstance(part, str) and any(c in part for c in "[]'(),")


def _problems(exc: ValidationError, prefix: tuple[Any, ...] = ()) -> list[tuple[str, str, Any]]:
    """One problem per field: the errors of a union's members are merged into one line."""
    merged: dict[str, tuple[list[str], Any]] = {}
    for err in exc.errors():
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        value = err.get("input", _MISSING) if err["type"] != "missing" else _MISSING
        if isinstance(value, dict):
            value = _MISSING  # a whole block is noise; the path says where
        loc = tuple(part for part in err["loc"] if not _is_union_tag(part))
        messages, _ = merged.setdefault(_dotted(prefix + loc), ([], value))
        if message not in messages:
            messages.append(message)
    return [(path, "; or ".join(msgs), value) for path, (msgs, value) in merged.items()]


def apply_overrides(data: dict[str, Any], overrides: list[str], source: str) -> None:
    """Apply ``a.b.c=value`` overrides in place; values are parsed as YAML scalars."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise RecipeError("--set", [("", f"expected KEY=VALUE, got {item!r}", _MISSING)])
        parts = key.split(".")
        node = data
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if isinstance(child, str) and part in ROLES:
                child = node[part] = {"name": child}
            if not isinstance(child, dict):
                raise RecipeError(
                    source,
                    [(".".join(parts[: i + 1]), "is not a block; cannot set a key in it", child)],
                )
            node = child
        try:
            node[parts[-1]] = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise RecipeError(
                "--set", [(key, f"invalid YAML value: {' '.join(problem.split())}", raw)]
            ) from None


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a recipe file safely (no Python tags), with a one-line error on any problem."""
    if not path.is_file():
        raise WmkitError(f"{path}: recipe file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise WmkitError(f"{path}: invalid YAML{where}: {problem}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WmkitError(f"{path}: cannot read recipe: {exc}") from None
    if data is None:
        raise WmkitError(
            f"{path}: the recipe is empty; write at least its name and the blocks you change "
            "(an empty file would run the paper's full-size defaults)"
        )
    if not isinstance(data, dict):
        raise WmkitError(f"{path}: a recipe must be a mapping of blocks, got {type(data).__name__}")
    return data


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``overrides`` laid over ``base``: blocks (mappings) merge key by key, at any depth;
    any other value, lists included, replaces the base's."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def read_recipe_file(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A recipe file's data with its ``extends:`` resolved: the named recipe (a path relative
    to this file) is read first, recursively, and this file's blocks are laid over it
    (``merge``). ``name`` is never inherited: a recipe is named by its own file. A recipe
    that extends itself, directly or not, is one line naming the chain."""
    path = Path(path)
    data = read_yaml(path)
    base_name = data.pop("extends", None)
    if base_name is None:
        return data
    if not isinstance(base_name, str) or not base_name:
        raise RecipeError(str(path), [("extends", "must be the path of a recipe file", base_name)])
    base_path = path.parent / base_name
    chain = (*_seen, path.resolve())
    if base_path.resolve() in chain:
        cycle = " -> ".join(p.name for p in (*chain, base_path.resolve()))
        raise RecipeError(
            str(path), [("extends", f"recipes extend each other: {cycle}", base_name)]
        )
    if not base_path.is_file():
        raise RecipeError(str(path), [("extends", f"no recipe file {base_path}", base_name)])
    base = read_recipe_file(base_path, chain)
    base.pop("name", None)
    return merge(base, data)


def resolve_recipe(data: dict[str, Any], registry: Registry, source: str = "<recipe>") -> Recipe:
    """Validate plain data into a Recipe, collecting every problem before raising."""
    data = dict(data)
    problems: list[tuple[str, str, Any]] = []
    blocks: dict[str, ComponentBlock] = {}
    # The pipeline first: it says which roles the recipe fills, and their defaults.
    pipeline = _component_block("pipeline", data.pop("pipeline", {}), DEFAULT_PIPELINE, registry)
    if isinstance(pipeline, ComponentBlock):
        blocks["pipeline"] = pipeline
        roles = registry.get("pipeline", pipeline.name).roles
    else:
        problems.extend(pipeline)
        roles = {}
    for role in ROLES:
        if role == "pipeline":
            continue
        if role not in roles:
            if role in data and blocks.get("pipeline"):
                problems.append(
                    (role, f"not used by pipeline {blocks['pipeline'].name!r}", _MISSING)
                )
            data.pop(role, None)
            continue
        block = _component_block(role, data.pop(role, {}), roles[role], registry)
        if isinstance(block, ComponentBlock):
            blocks[role] = block
        else:
            problems.extend(block)
    # A component block that failed is stood in for by an empty one, so that the core
    # blocks are still checked and every problem is reported in one go (the recipe is
    # rejected all the same).
    filled = {role: blocks.get(role, _stand_in_block()) for role in ["pipeline", *roles]}
    try:
        recipe = Recipe.model_validate({**data, **filled})
    except ValidationError as exc:
        problems.extend(_problems(exc))
    env = data.get("env")
    env_id = env.get("id") if isinstance(env, dict) else None
    if isinstance(env_id, str) and ("env", env_id) in registry.clashes:
        problems.append(("env.id", str(registry.clash_error("env", env_id)), _MISSING))
    elif isinstance(env_id, str) and env_id not in (ids := _known_env_ids(registry)):
        close = sorted(i for i in ids if env_id.split("-")[0].lower() in i.lower())
        hint = f"; did you mean one of: {', '.join(close[:5])}" if close else ""
        problems.append(("env.id", f"unknown environment{hint}", env_id))
    if problems:
        raise RecipeError(source, problems)
    return recipe


def _component_block(
    role: str, raw: Any, default: str, registry: Registry
) -> ComponentBlock | list[tuple[str, str, Any]]:
    """A component block validated by its component's own options, or its problems."""
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, dict):
        return [(role, "must be a block of options", raw)]
    raw = dict(raw)
    name = raw.pop("name", default)
    try:
        cls = registry.get(role, name)
    except WmkitError as exc:  # unknown, or claimed by two plugins
        return [(f"{role}.name", str(exc), _MISSING)]
    try:
        return ComponentBlock(name=name, options=cls.Options.model_validate(raw))
    except ValidationError as exc:
        return _problems(exc, (role,))


def _stand_in_block() -> ComponentBlock:
    return ComponentBlock(name="-", options=Options())


def _known_env_ids(registry: Registry) -> set[str]:
    import gymnasium

    return set(gymnasium.registry) | set(registry.envs)


def load_recipe(
    path: str | Path,
    overrides: list[str] | None = None,
    registry: Registry | None = None,
    trust_plugins: bool = True,
) -> Recipe:
    """Read, override and validate a recipe file; the run name defaults to the file's stem.

    ``trust_plugins=False`` is for a recipe inside a run directory, which may come from
    anywhere: its ``plugins:`` are then refused unless each is an installed plugin's module,
    so that reading it imports (runs) nothing new."""
    path = Path(path)
    if trust_plugins:
        data = read_recipe_file(path)
    else:  # a run's recipe is written complete: one that extends a file is not a run's
        data = read_yaml(path)
        if "extends" in data:
            raise RecipeError(
                str(path), [("extends", "a run's recipe is complete; it extends nothing", _MISSING)]
            )
    data.setdefault("name", path.stem)
    apply_overrides(data, overrides or [], str(path))
    if not trust_plugins:
        refuse_untrusted_plugins(data, str(path))
    return resolve_recipe(data, registry or registry_for(data, str(path)), str(path))


def refuse_untrusted_plugins(data: dict[str, Any], source: str) -> None:
    """Refuse a recipe whose ``plugins:`` name modules that no installed plugin provides."""
    from wmkit.core.plugins import get_plugins

    modules = data.get("plugins") or []
    if not isinstance(modules, list):
        raise RecipeError(source, [("plugins", "must be a list of module names", modules)])
    installed = {info.module.split(":")[0] for info in get_plugins().infos if not info.error}
    untrusted = [m for m in modules if m not in installed]
    if untrusted:
        message = (
            f"this run's recipe would import (and so run) {', '.join(map(str, untrusted))}; "
            "pass --trust-plugins if you trust where this run directory came from"
        )
        raise RecipeError(source, [("plugins", message, untrusted)])


def registry_for(data: dict[str, Any], source: str = "<recipe>") -> Registry:
    """The registry a recipe's components come from: installed plugins plus its ``plugins:``."""
    from wmkit.core.plugins import RecipeModuleError, get_registry

    modules = data.get("plugins") or []
    if not isinstance(modules, list) or not all(isinstance(m, str) for m in modules):
        raise RecipeError(source, [("plugins", "must be a list of module names", modules)])
    try:
        return get_registry(tuple(modules))
    except RecipeModuleError as exc:
        raise RecipeError(source, [(f"plugins.{exc.index}", str(exc), _MISSING)]) from None
