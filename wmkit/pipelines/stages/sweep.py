"""Stage 7 (optional): the paper's Table 2. For each temperature tau, train a controller
entirely in the dream at tau, then score it in the dream and in the real environment.

Low tau gives an easy, exploitable dream; higher tau a harder one whose policies transfer.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from wmkit.pipelines.stages.base import StageContext  # noqa: E402
from wmkit.pipelines.stages.evaluate import dream_episodes, dream_summary, evaluate  # noqa: E402
from wmkit.pipelines.stages.fit_controller import (  # noqa: E402
    dream_scorer,
    evolve,
    trained_memory_and_fresh_controller,
)
from wmkit.record.plots import save_figure  # noqa: E402
from wmkit.rollouts.components import load_component  # noqa: E402
from wmkit.storage import scores  # noqa: E402
from wmkit.storage.fileio import atomic_write_json, atomic_write_text  # noqa: E402


def budget(recipe) -> int:
    """Generations per swept temperature."""
    return recipe.dream.sweep_generations or recipe.optimizer.options.generations


def is_current(recipe, record: dict) -> bool:
    """Whether a finished sweep stage covers the recipe's temperatures with its budget."""
    swept = [f"{t:g}" for t in recipe.dream.sweep]
    return record.get("swept") == swept and record.get("generations") == budget(recipe)


def _start_over_unless_budget(folder: Path, generations: int) -> None:
    """A temperature's checkpoints resume only under the budget they were trained with."""
    marker = folder / "budget.json"
    if folder.exists() and (
        not marker.exists() or json.loads(marker.read_text()).get("generations") != generations
    ):
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(marker, {"generations": generations})


def temperature_sweep(ctx: StageContext) -> dict:
    taus = ctx.recipe.dream.sweep
    if not taus:
        return {"temperatures": 0, "swept": [], "generations": budget(ctx.recipe)}
    root = ctx.run.root / "sweep"
    results_path = root / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    generations = budget(ctx.recipe)
    for tau in taus:
        key = f"{tau:g}"
        if key in results and results[key].get("generations", generations) == generations:
            continue  # done with this budget (entries from before budgets were recorded too)
        folder = root / f"tau_{key}"
        _start_over_unless_budget(folder, generations)
        memory, controller = trained_memory_and_fresh_controller(ctx)
        if isinstance(controller, torch.nn.Module):
            controller.to(ctx.device)
        score = dream_scorer(ctx, memory, controller, tau, salt=f"dream-{key}")
        evolve(ctx, controller, score, folder, f"sweep_tau{key}", f"dream tau={key}", generations)
        load_component(folder / "controller", controller, "controller")
        dreamed = dream_episodes(ctx, memory, controller, tau)
        dream = dream_summary(dreamed, tau)
        real = evaluate(ctx, controller_stem=folder / "controller")
        _record_scores(ctx, key, tau, folder, real, dreamed)
        results[key] = {
            "temperature": tau,
            "generations": generations,
            "dream": dream,
            "real": {
                "mean": real.mean,
                "std": real.std,
                "episodes": real.episodes,
                "returns": real.returns,
            },
        }
        atomic_write_json(results_path, results)
    rows = [results[f"{t:g}"] for t in taus]
    write_table(ctx, rows)
    return {
        "temperatures": len(rows),
        "swept": [f"{t:g}" for t in taus],
        "generations": generations,
    }


def _record_scores(ctx: StageContext, key: str, tau: float, folder: Path, real, dreamed) -> None:
    """The swept controller's real and dreamed episodes, into the run's score file."""
    controller = (folder / "controller").relative_to(ctx.run.root).as_posix()
    generation = len(scores.generation_rows(ctx.run, f"sweep_tau{key}"))
    device = str(ctx.device)
    evaluation = scores.real_evaluation(real, device, controller, generation)
    scores.record_evaluation(ctx.run, f"sweep_tau{key}", evaluation)
    evaluation = scores.dream_evaluation(dreamed, tau, device, controller, generation)
    scores.record_evaluation(ctx.run, f"sweep_tau{key}_dream", evaluation)


def write_table(ctx: StageContext, rows: list[dict]) -> None:
    lines = [
        "| temperature | dream score | real score | real episodes |",
        "|---:|---:|---:|---:|",
    ]
    for r in rows:
        d, v = r["dream"], r["real"]
        lines.append(
            f"| {r['temperature']:g} | {d['mean']:.1f} ± {d['std']:.1f} | "
            f"{v['mean']:.1f} ± {v['std']:.1f} | {v['episodes']} |"
        )
    atomic_write_text(ctx.run.root / "temperature_sweep.md", "\n".join(lines) + "\n")
    taus = np.array([r["temperature"] for r in rows])
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in (("dream", "dream score"), ("real", "real score")):
        means = np.array([r[key]["mean"] for r in rows])
        stds = np.array([r[key]["std"] for r in rows])
        ax.errorbar(taus, means, yerr=stds, marker="o", capsize=3, label=label)
    ax.set_xlabel("temperature tau")
    ax.set_ylabel("return")
    ax.set_title("Trained in the dream at tau: dream vs real")
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, ctx.run.plots / "temperature_sweep.png")


# A finished sweep reruns when the recipe's temperatures or budget change (the pipeline
# asks each stage that has an ``is_current``).
temperature_sweep.is_current = is_current  # type: ignore[attr-defined]
