"""What every pipeline answers besides its stages, with the answers most pipelines share.

A pipeline subclasses ``BasePipeline`` and writes ``stages`` and ``preflight``; it overrides
the rest where its agent differs from the paper's V, M and C played by the workers. The
commands (``eval``, ``dream``, ``gap``, ``verify``, ``export``) only ever call these methods,
so a new pipeline is a plugin that touches no command (docs/pipelines.md).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from wmkit.core.errors import WmkitError
from wmkit.core.protocols import PipelineOptions
from wmkit.pipelines.stages.base import StageContext
from wmkit.pipelines.stages.evaluate import EvalResult, evaluate

Stage = Callable[[StageContext], dict[str, Any]]


class BasePipeline:
    """Defaults for the ``Pipeline`` protocol's questions. ``evaluate`` plays the agent the
    workers build from the run's checkpoints (V, M and C); there is no in-progress agent, no
    dream to film or measure, and no zoo entry, until a pipeline says otherwise."""

    name: ClassVar[str]
    Options: ClassVar[type[PipelineOptions]]
    roles: ClassVar[dict[str, str]]
    record_last_frame: ClassVar[bool] = False
    # The checkpoints its trained agent consists of: what a zoo entry holds. Empty: none.
    zoo_weights: ClassVar[tuple[str, ...]] = ()

    def __init__(self, options: PipelineOptions):
        self.options = options

    def stages(self, recipe: Any) -> list[tuple[str, Stage]]:
        raise NotImplementedError

    def preflight(self, ctx: StageContext) -> None:
        """Nothing to check beyond the recipe's own validation."""

    @classmethod
    def stage_order(cls, layout: Any) -> list[str] | None:
        """Unknown without the recipe: ``wmkit verify`` then treats every checkpoint a
        completed stage wrote as needed."""
        return None

    def evaluate(
        self,
        ctx: StageContext,
        episodes: int | None = None,
        seed: int | None = None,
        video_dir: Path | None = None,
    ) -> EvalResult:
        return evaluate(ctx, "controller", episodes, seed, video_dir=video_dir)

    def evaluate_in_progress(
        self, ctx: StageContext, episodes: int | None = None, seed: int | None = None
    ) -> tuple[EvalResult, dict[str, int]]:
        raise WmkitError(
            f"--in-progress: pipeline {self.name!r} keeps no in-progress checkpoint of its "
            "controller to score"
        )

    def dream_film(self, ctx: StageContext, env: Any, *args: Any, **kwargs: Any) -> Any:
        raise WmkitError(f"pipeline {self.name!r} has no dream to film")

    def measure_gap(self, ctx: StageContext, *args: Any, **kwargs: Any) -> tuple[list, Any]:
        raise WmkitError(f"pipeline {self.name!r} has no dream to measure against reality")
