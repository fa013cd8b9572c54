"""The roles of a world-model agent, in one place so the architecture reads at a glance; the
table ``ROLES`` at the end lists them, and everything that needs the list reads it there.

The paper's agent: V (``Vision``) compresses a frame to a latent ``z``; M (``Memory``) predicts
the next ``z`` (plus reward and done) from ``z``, the action and its own state; C
(``Controller``) maps the features ``[z, h]`` to an action; an ``Optimizer`` searches C's
flat parameter vector by ask/tell. The Dreamer line's: a ``WorldModel`` is V and M as one
piece, trained jointly, whose state holds its sampled latent; C is a ``GradientController``
(an actor with an action distribution) that a ``GradientOptimizer`` trains in the world
model's dream. A ``Pipeline`` says which of these roles a recipe fills and which stages run.

Vision, Memory and WorldModel are in practice ``torch.nn.Module`` subclasses: the pipeline
moves them between devices (``to``) and switches ``train``/``eval`` mode.

A component is a class with a ``name`` (what a recipe selects it by) and an ``Options``
pydantic model (what the recipe block is validated against). Options subclass the role's
base options below, which carry the fields the pipeline itself needs (epochs, population...).
Constructors are keyword-free and fixed per role (``Role.constructor``), so a pipeline can
build any component:

* ``Vision(options, frame_shape)``           frame_shape = (channels, height, width)
* ``Memory(options, latent_dim, action_dim)``
* ``WorldModel(options, obs_shape, action_dim)``   obs_shape: (C, H, W) frames or (n,) vectors
* ``Controller(options, input_dim, action_low, action_high)``
* ``Optimizer(options, x0, seed)``; ``GradientOptimizer(options, controller, feature_dim, seed)``
* ``Pipeline(options)``

An ``Executor`` is registered and selected the same way, though it is no part of the agent:
it decides where a stage's rollouts run (local processes, a Ray cluster, ...).

* ``Executor(options, workers, initializer, initargs, task_timeout, retries)``
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

# The largest float32: every option that reaches torch must fit in one.
FLOAT32_MAX = float(np.finfo(np.float32).max)


class Options(BaseModel):
    """Base of every options model: unknown keys are errors, never silently ignored, and no
    number is infinite, NaN or too large for float32 (``learning_rate: 1e300`` would pass
    ``gt=0`` and overflow in the first Adam step)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _finite(cls, value: Any) -> Any:
        for x in value if isinstance(value, (list, tuple)) else (value,):
            if isinstance(x, float) and not abs(x) <= FLOAT32_MAX:  # also catches NaN
                raise ValueError(f"must be a finite number of at most {FLOAT32_MAX:.3g}")
        return value


class TrainOptions(Options):
    """Fields the pipeline reads to drive a learned component's training loop."""

    epochs: int = Field(10, ge=1, description="Passes over the training data.")
    batch_size: int = Field(100, ge=1, description="Examples (frames or sequences) per step.")
    learning_rate: float = Field(1e-4, gt=0, description="Adam learning rate.")


class VisionOptions(TrainOptions):
    """Base options for a Vision component."""


class MemoryOptions(TrainOptions):
    """Base options for a Memory component."""

    seq_len: int = Field(
        100, ge=2, description="Length of the latent sequences the memory is trained on."
    )
    batch_by_length: bool = Field(
        False,
        description=(
            "Batch sequences of similar real length together and cut each batch's shared "
            "padding: much faster when most episodes are far shorter than seq_len (Doom: "
            "1.6x fewer LSTM steps), but each batch is then all episode ends or none."
        ),
    )


class ControllerOptions(Options):
    """Base options for a Controller component."""


class StrategyOptions(Options):
    """Base options of every optimizer, whatever its strategy for training C: an ask/tell
    search (``OptimizerOptions``) or gradients in imagination (``GradientOptions``)."""


class OptimizerOptions(StrategyOptions):
    """Base options for an ask/tell Optimizer: how candidate controllers are scored."""

    generations: int = Field(100, ge=1, description="Generations (ask/tell rounds) to run.")
    population: int = Field(64, ge=2, description="Candidates asked for per generation.")
    rollouts_per_candidate: int = Field(
        16, ge=1, description="Episodes averaged into one candidate's fitness."
    )
    max_steps: int | None = Field(
        None,
        ge=1,
        description="Step cap of a fitness episode; null uses the environment's own limit.",
    )
    stop_without_reward: int | None = Field(
        None,
        ge=1,
        description=(
            "End a fitness episode after this many consecutive steps without a positive "
            "reward (a car that left the track); null plays every episode to its end."
        ),
    )
    train_in: Literal["real", "dream"] = Field(
        "real",
        description=(
            "Where fitness episodes run: 'real' plays the environment (V and M in the loop); "
            "'dream' rolls M forward instead and never touches the environment."
        ),
    )


class GradientOptions(StrategyOptions):
    """Base options for a GradientOptimizer: C trained by gradients on imagined trajectories.

    In pipeline ``online`` the world model's training sets how many updates there are (its
    ``train_ratio``); in pipeline ``ha`` C trains in M's dream alone, in generations of
    ``updates`` updates, the fields below the learning rate."""

    # Where C's training episodes run: always imagined (read where ask/tell searches differ).
    train_in: ClassVar[Literal["dream"]] = "dream"

    learning_rate: float = Field(3e-5, gt=0, description="Adam learning rate of the actor.")
    generations: int = Field(
        100,
        ge=1,
        description=(
            "Pipeline ha: generations of training in M's dream; after each the actor and the "
            "optimizer are checkpointed and the actor is scored in the dream."
        ),
    )
    updates: int = Field(10, ge=1, description="Pipeline ha: updates per generation.")
    starts: int = Field(
        256,
        ge=1,
        description=(
            "Pipeline ha: imagined trajectories per update, each from a real moment of the "
            "data (dream.starts: first frames, or anywhere with M warmed up)."
        ),
    )
    score_dreams: int = Field(
        16,
        ge=1,
        description=(
            "Pipeline ha: whole dreams from first frames that score the actor's most likely "
            "actions after each generation (its fitness curve; not used to train)."
        ),
    )


class WorldModelOptions(Options):
    """Base options for a WorldModel: it trains on batches of real sequences."""

    batch_size: int = Field(16, ge=1, description="Sequences per training batch.")
    seq_len: int = Field(64, ge=2, description="Steps per training sequence.")
    learning_rate: float = Field(1e-4, gt=0, description="Adam learning rate.")


class PipelineOptions(Options):
    """Base options for a Pipeline: the settings of its own stages."""


class ExecutorOptions(Options):
    """Base options for an Executor. The fields every executor honours stay at the top of the
    recipe (``workers``, ``task_timeout``, ``task_retries``); an executor adds its own."""


@dataclass
class Prediction:
    """What a Memory predicts for the next step, for a batch of B agents.

    ``reward`` and ``done`` (a probability) are what a dream needs to be stepped like an
    environment; ``params`` holds the next-latent distribution in the component's own terms
    (an MDN's ``logpi``, ``mu``, ``sigma``), which only that component's ``sample`` reads.
    """

    reward: torch.Tensor
    done: torch.Tensor
    params: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class SequenceBatch:
    """Latent sequences for training a Memory: B sequences of T steps.

    ``z`` [B, T, Z] holds the latents, ``action`` [B, T, A] the action taken at each step,
    ``reward`` [B, T] and ``done`` [B, T] what the environment answered to that action.
    ``mask`` [B, T] is 1 on real steps and 0 on the padding after an episode's end, so that
    an episode's last step, the one whose ``done`` is 1, can sit anywhere in a sequence.

    Step t is trained to predict ``reward[:, t]`` and ``done[:, t]`` where ``mask[:, t]`` is
    1, and ``z[:, t + 1]`` where ``mask[:, t + 1]`` is 1: an episode's last step has a reward
    and a done target but no next latent. (Dropping that step would leave the done head
    without a single positive example.) Average per-step losses with ``masked_mean``.
    """

    z: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    done: torch.Tensor
    mask: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.mask is None:
            self.mask = torch.ones(self.z.shape[:2], dtype=self.z.dtype, device=self.z.device)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` [B, T, ...] over the steps where ``mask`` [B, T] is 1."""
    values = values.reshape(*mask.shape, -1).mean(-1)
    return (values * mask).sum() / mask.sum().clamp(min=1)


class TrainedModule(Protocol):
    """What the pipeline does with V and M besides their role: save and load their weights,
    move them between devices, switch train/eval mode (as a torch.nn.Module does)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> Any: ...

    def to(self, device: Any) -> Any: ...

    def train(self, mode: bool = True) -> Any: ...

    def eval(self) -> Any: ...


@runtime_checkable
class Vision(TrainedModule, Protocol):
    """V: frames in [0, 1] of shape [B, C, H, W] to and from a latent distribution."""

    name: ClassVar[str]
    Options: ClassVar[type[VisionOptions]]
    latent_dim: int

    def encode(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the latent mean and log-variance, each [B, latent_dim]. M trains on
        samples ``mu + exp(logvar / 2) * eps``; the agent acts on ``mu``. A deterministic
        vision returns a very low log-variance (e.g. -30), not zeros (docs/plugins.md)."""

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Return frames in [0, 1], [B, C, H, W], for latents [B, latent_dim]."""

    def fit_epoch(self, batches: Iterable[torch.Tensor]) -> dict[str, float]:
        """Train on one pass of frame batches; return the mean of each loss term.

        Optional, for exact resume: ``train_state_dict()`` / ``load_train_state_dict(d)``
        export and restore the training state (e.g. Adam's moments) as named tensors."""


@runtime_checkable
class Memory(TrainedModule, Protocol):
    """M: a recurrent model of p(z_{t+1}, r_t, done_t | z_t, a_t, state_t)."""

    name: ClassVar[str]
    Options: ClassVar[type[MemoryOptions]]
    feature_dim: int

    def initial_state(self, batch_size: int) -> Any:
        """The recurrent state before the first step, for ``batch_size`` agents."""

    def step(self, z: torch.Tensor, action: torch.Tensor, state: Any) -> tuple[Prediction, Any]:
        """Advance one batched time step; return the prediction and the new state."""

    def features(self, state: Any) -> torch.Tensor:
        """What the controller sees of the state (``h`` in the paper), [B, feature_dim]."""

    def sample(
        self,
        prediction: Prediction,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Draw the next latent [B, Z]; higher temperature means a more uncertain dream."""

    def fit_epoch(self, batches: Iterable[SequenceBatch]) -> dict[str, float]:
        """Train on one pass of sequence batches; return the mean of each loss term."""


@runtime_checkable
class Controller(Protocol):
    """C: features [B, F] to actions [B, A] inside the action bounds."""

    name: ClassVar[str]
    Options: ClassVar[type[ControllerOptions]]
    num_params: int

    def act(self, features: torch.Tensor) -> torch.Tensor: ...

    # Optional: ``act_batched(params [B, P], features [B, F]) -> [B, A]``, row i acting with
    # its own parameters. Dream training uses it to score a whole generation in one batch.

    def get_params(self) -> np.ndarray:
        """All parameters as one flat float64 vector (what the optimizer searches)."""

    def set_params(self, params: np.ndarray) -> None: ...


@runtime_checkable
class Optimizer(Protocol):
    """A black-box maximiser with the ask/tell interface of the ``cma`` package.

    Unlike ``cma`` (which minimises), ``tell`` takes returns: higher is better.

    Optional: ``fitness_changed()``, called when a new round of ``iterate`` starts scoring
    in a new M's dream. An optimizer that keeps the best candidate seen should forget it
    there, since that return was measured by a fitness that no longer holds.
    """

    name: ClassVar[str]
    Options: ClassVar[type[OptimizerOptions]]

    def ask(self) -> list[np.ndarray]: ...

    def tell(self, solutions: list[np.ndarray], returns: list[float]) -> None: ...

    def stop(self) -> bool: ...

    def result(self) -> tuple[np.ndarray, float]:
        """The parameters to keep as the controller (the best seen, or the search's centre)
        and their return, or an estimate of it."""

    def state_dict(self) -> dict[str, np.ndarray]:
        """Everything needed to continue the search, as plain arrays (no pickle)."""

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None: ...


@runtime_checkable
class Executor(Protocol):
    """Runs a stage's rollout tasks and yields ``(index, result)`` as results arrive.

    Built once per stage with ``initializer`` and ``initargs``: ``initializer(*initargs)``
    must have run in a process before it runs a task there. ``initargs`` are values (the
    resolved recipe as plain data, the weights of V, M and C), never paths, and a task
    returns its result as data: nothing is shared with the driver but what travels.
    Every task is a pure function of its argument and ``initargs``, so a task lost with a
    process or a machine may be run again anywhere, at most ``retries`` more times, and one
    running past ``task_timeout`` seconds may be stopped and run again.
    """

    name: ClassVar[str]
    Options: ClassVar[type[ExecutorOptions]]

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """Run ``fn`` on every task; yield each result with its task's index, in any order."""

    def close(self) -> None:
        """Release the processes or connections this executor holds."""


State = dict[str, torch.Tensor]
"""A world model's recurrent state: named tensors, batch first, so the core can slice,
stack and detach it without knowing what is inside."""


@dataclass
class ObservationBatch:
    """Real sequences for training a WorldModel as one piece: B sequences of T steps, in the
    order an agent meets them. At step t the agent has taken ``prev_action`` [B, T, A] (zeros
    where ``first`` is 1), received ``reward`` [B, T] for it, and sees ``obs`` [B, T, ...]
    (float: frames in [0, 1] as [C, H, W], or state vectors); ``cont`` [B, T] is 0 where that
    observation ends the episode (terminated, not cut off by a step cap), and ``first`` [B, T]
    is 1 where an episode starts, so the state is reset there. ``mask`` [B, T] is 0 on padding.
    """

    obs: torch.Tensor
    prev_action: torch.Tensor
    reward: torch.Tensor
    cont: torch.Tensor
    first: torch.Tensor
    mask: torch.Tensor


@runtime_checkable
class WorldModel(TrainedModule, Protocol):
    """V and M as one piece (an RSSM): observations in, latent states and predictions out,
    trained jointly from real sequences. The sampled latent is part of the state, so it feeds
    the model's own recurrence; ``imagine`` is differentiable, for gradients in the dream."""

    name: ClassVar[str]
    Options: ClassVar[type[WorldModelOptions]]
    feature_dim: int

    def initial_state(self, batch_size: int) -> State:
        """The state before an episode's first observation, for ``batch_size`` agents."""

    def observe(
        self, state: State, prev_action: torch.Tensor, obs: torch.Tensor, first: torch.Tensor
    ) -> State:
        """Filter one real step: the state after taking ``prev_action`` [B, A] and then seeing
        ``obs`` [B, ...] (as in ``ObservationBatch``); where ``first`` [B] is 1 the state
        starts afresh."""

    def imagine(self, state: State, action: torch.Tensor) -> State:
        """One step of the learned dynamics with no observation: the next latent is sampled
        (from torch's global generator), with gradients to ``action`` and ``state``."""

    def features(self, state: State) -> torch.Tensor:
        """What the controller sees of a state, [B, feature_dim]."""

    def predict(self, state: State) -> Prediction:
        """The reward received on reaching ``state`` and the probability that it ends the
        episode (``done``), each [B]."""

    def decode(self, state: State) -> torch.Tensor:
        """What the model believes the observation of ``state`` looks like, as observations
        are given (frames [B, C, H, W] in [0, 1], or vectors [B, n]): ``wmkit dream`` films it."""

    def fit_batch(self, batch: ObservationBatch) -> tuple[dict[str, float], State]:
        """One training step on real sequences; returns the mean of each loss term and the
        filtered state of every real step (detached, batch [B * T]): where dreams start."""


@runtime_checkable
class GradientController(Controller, Protocol):
    """A controller trained by gradients (an actor): besides ``act`` (its most likely action,
    for evaluation), the action distribution, whose parameters carry gradients."""

    def distribution(self, features: torch.Tensor) -> torch.distributions.Distribution:
        """The action distribution for features [B, F]: ``sample()`` gives actions [B, A]
        inside the action bounds, ``log_prob`` and ``entropy`` give [B]."""


@runtime_checkable
class GradientOptimizer(Protocol):
    """Trains a GradientController on trajectories imagined by a frozen world model.

    Built as ``GradientOptimizer(options, controller, feature_dim, seed)``: it updates the
    controller in place and owns whatever else it learns (a critic). One with a ``graph``
    attribute has it set to True by either pipeline (``request_graph``) when the recipe asks
    for ``dream.graph``: it may then record its imagination as a CUDA graph
    (``wmkit.nn.cuda_graph``), computing what it would without."""

    name: ClassVar[str]
    Options: ClassVar[type[GradientOptions]]

    def update(self, world_model: WorldModel, start: State) -> dict[str, float]:
        """Imagine from the states ``start`` with the controller and take one training step;
        return the mean of each loss term. It must leave ``world_model``'s weights as they
        were: the world model is trained on real data only."""

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Everything needed to continue training exactly (critic, optimizer moments...)."""

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None: ...


@runtime_checkable
class Pipeline(Protocol):
    """A recipe's line of stages, and which roles it fills: the paper's ``ha`` (V -> M -> C
    by evolution) or ``online`` (a world model and an actor trained as it plays).

    Built as ``Pipeline(options)``. ``roles`` maps each role its recipes fill to that role's
    default component; a recipe block of any other role is an error.

    Besides its stages, a pipeline answers everything the commands ask of a run, so that no
    command needs to know which pipeline it holds: the order of its stages without a
    recipe's plugins (``wmkit verify``), its trained agent's real score, finished or in
    progress (``wmkit eval``), its dream as a film (``wmkit dream``) and next to reality
    (``wmkit gap``), and whether a zoo entry can hold its agent (``wmkit export``).
    ``wmkit.pipelines.base.BasePipeline`` gives each a default; docs/pipelines.md walks
    through a small pipeline."""

    name: ClassVar[str]
    Options: ClassVar[type[PipelineOptions]]
    roles: ClassVar[dict[str, str]]
    # Episodes keep the observation after their last action (a world model trained on
    # whole transitions learns from it that the episode ended there).
    record_last_frame: ClassVar[bool]
    # The checkpoints (names under the run's ``checkpoints/``) its trained agent consists
    # of, which a zoo entry holds: V, M and C for ``ha``; the world model and the actor for
    # ``online``. A pipeline that names none cannot be exported.
    zoo_weights: ClassVar[tuple[str, ...]]

    def stages(self, recipe: Any) -> list[tuple[str, Callable[[Any], dict[str, Any]]]]:
        """The stages to run, in order, each a function of the ``StageContext``."""

    def preflight(self, ctx: Any) -> None:
        """Build every component once, untrained, so that parts that do not fit together
        fail before any long work (``wmkit run`` and ``wmkit validate``)."""

    @classmethod
    def stage_order(cls, layout: Any) -> list[str] | None:
        """The names of ``stages`` in order, from a recipe's core blocks alone (``layout``
        has ``collect`` and ``iterate``): ``wmkit verify`` reads a run without importing the
        plugins its recipe names. None if they cannot be known so."""

    def evaluate(
        self, ctx: Any, episodes: int | None, seed: int | None, video_dir: Any = None
    ) -> Any:
        """The trained agent over ``episodes`` real episodes from ``seed`` (``eval``'s
        defaults when None): an ``EvalResult`` (``wmkit eval``)."""

    def evaluate_in_progress(
        self, ctx: Any, episodes: int | None, seed: int | None
    ) -> tuple[Any, dict[str, int]]:
        """The agent as a run still training last saved it, and how far it had come
        (``wmkit eval --in-progress``); a ``WmkitError`` if the pipeline keeps no such
        checkpoint."""

    def dream_film(
        self,
        ctx: Any,
        env: Any,
        steps: int,
        temperature: float | None,
        seed: int,
        side_by_side: bool,
        random: Any,
        controller: bool,
    ) -> Any:
        """``steps`` dreamed steps from the first real frame of the episode ``seed``, every
        one decoded to a frame, with the trained controller's actions (``controller``) or
        ``random``'s: a ``dreams.film.Imagination`` (``wmkit dream``)."""

    def measure_gap(
        self,
        ctx: Any,
        policies: list[str],
        episodes: int,
        temperature: float | None,
        controller: bool,
    ) -> tuple[list[Any], float | None]:
        """Each policy (``controller`` for the trained one) in the dream and in reality:
        ``GapRow``s, and the dream's temperature, None if it has none (``wmkit gap``)."""


@dataclass(frozen=True)
class Role:
    """One row of the table of roles: what a component of the role must do and be given."""

    protocol: type
    options: type[Options]
    description: str
    constructor: str
    saved_as: Literal["state", "params"] = "state"


# The one table of roles. A recipe's component blocks, the registry's ``add_<role>``
# methods, ``wmkit plugins``, ``wmkit validate`` and the contract tests all follow it.
ROLES: dict[str, Role] = {
    "pipeline": Role(
        Pipeline, PipelineOptions, "The line of stages the run goes through.", "cls(options)"
    ),
    "vision": Role(Vision, VisionOptions, "V: the frame encoder.", "cls(options, frame_shape)"),
    "memory": Role(
        Memory,
        MemoryOptions,
        "M: the predictive recurrent model.",
        "cls(options, latent_dim, action_dim)",
    ),
    "world_model": Role(
        WorldModel,
        WorldModelOptions,
        "V and M as one piece, trained jointly from real sequences (an RSSM).",
        "cls(options, obs_shape, action_dim)",
    ),
    "controller": Role(
        Controller,
        ControllerOptions,
        "C: the policy on the features.",
        "cls(options, input_dim, action_low, action_high)",
        saved_as="params",
    ),
    "optimizer": Role(
        Optimizer,
        StrategyOptions,
        "Trains C: an ask/tell search, or gradients in imagination.",
        "cls(options, x0, seed) (ask/tell); cls(options, controller, feature_dim, seed) (gradient)",
    ),
    "executor": Role(
        Executor,
        ExecutorOptions,
        "Where rollouts run: local processes, or a Ray cluster (executor.name=ray).",
        "cls(options, workers, initializer, initargs, task_timeout, retries)",
    ),
}
ROLE_OPTIONS: dict[str, type[Options]] = {name: role.options for name, role in ROLES.items()}
