"""``wmkit compare``'s engine: groups of runs, their aggregate scores with stratified-bootstrap
confidence intervals, and probabilities of improvement, all computed by ``rliable``
(Agarwal et al. 2021, "Deep RL at the Edge of the Statistical Precipice").

A group's scores form a matrix with one row per run (pipeline seed) and one column per
evaluation episode seed. rliable calls the columns tasks: the bootstrap resamples the columns
(episode seeds) and, within each, the rows (pipeline seeds), so a confidence interval covers
both what another pipeline seed and what other episodes would give. With one run, it is a
bootstrap over episodes. Only the score files are read (``docs/scores.md``), so whoever has
them can recompute every number and figure.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from wmkit.core.errors import WmkitError
from wmkit.storage.fileio import read_regular, sha256_bytes
from wmkit.storage.scores import FILENAME, PIPELINE_EVALUATION, scores_of

METRICS = ("mean", "median", "iqm")


@dataclass
class Group:
    """Runs whose scores are pooled: the seeds of one recipe, or whatever the user joined."""

    label: str
    runs: list[Path]
    scores: list[dict[str, Any]] = field(default_factory=list)
    matrix: np.ndarray | None = None  # [runs, episodes]
    episode_seeds: list[Any] = field(default_factory=list)

    def header_values(self, key: str) -> list[str]:
        return sorted({str(s["run"].get(key)) for s in self.scores})


def _is_run(path: Path) -> bool:
    return (path / FILENAME).exists() or (path / "recipe.yaml").exists()


def expand(path: Path) -> list[Path]:
    """A run (or zoo entry) is itself; a group directory is its seeds' runs."""
    from wmkit.results.groups import GROUP_FILE, group_runs

    if not path.is_dir():
        raise WmkitError(f"{path}: no such run or group directory")
    if (path / GROUP_FILE).exists() or not _is_run(path):
        runs = [r for r in group_runs(path) if _is_run(r)]
        if not runs:
            raise WmkitError(f"{path}: neither a run, a zoo entry nor a group of runs")
        return runs
    return [path]


def parse_group(arg: str) -> tuple[str | None, list[Path]]:
    """``PATH``, or ``LABEL=PATH[,PATH...]`` to name a group or pool several paths."""
    label, sep, rest = arg.partition("=")
    if sep and label and "/" not in label:
        return label, [Path(p) for p in rest.split(",") if p]
    return None, [Path(arg)]


def load_groups(args: list[str], evaluation: str = PIPELINE_EVALUATION) -> list[Group]:
    groups = []
    for arg in args:
        label, paths = parse_group(arg)
        runs = [run for p in paths for run in expand(p)]
        if label is None:
            p = paths[0]
            label = p.name if not p.name.startswith("seed_") else f"{p.parent.name}/{p.name}"
        groups.append(Group(label, runs))
    labels = [g.label for g in groups]
    for g in groups:
        if labels.count(g.label) > 1:
            g.label = " ".join(str(r) for r in g.runs[:1]) + ("..." if len(g.runs) > 1 else "")
    if len({g.label for g in groups}) < len(groups):
        raise WmkitError("two groups have the same label; name them as LABEL=PATH")
    for g in groups:
        _fill(g, evaluation)
    return groups


def _fill(group: Group, evaluation: str) -> None:
    rows, seeds = [], None
    for run in group.runs:
        data = scores_of(run)
        ev = data["evaluations"].get(evaluation)
        if ev is None:
            have = ", ".join(sorted(data["evaluations"])) or "none"
            raise WmkitError(f"{run}: no evaluation {evaluation!r} (it has: {have})")
        episode_seeds = [e.get("seed") for e in ev["episodes"]]
        if seeds is None:
            seeds = episode_seeds
        elif episode_seeds != seeds:
            raise WmkitError(
                f"group {group.label!r}: {run} was evaluated on other episode seeds than "
                f"{group.runs[0]}; pick evaluations on the same seeds with --evaluation"
            )
        group.scores.append(data)
        rows.append([e["return"] for e in ev["episodes"]])
    group.matrix = np.asarray(rows, dtype=float)
    group.episode_seeds = seeds or []


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """rliable draws its bootstrap indices from numpy's global generator: seed it, and put
    it back as it was."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def aggregates(groups: list[Group], reps: int, seed: int) -> dict[str, dict[str, list[float]]]:
    """Per group: mean, median and IQM with their 95% stratified-bootstrap CIs."""
    from rliable import library, metrics

    def func(x: np.ndarray) -> np.ndarray:
        return np.array(
            [metrics.aggregate_mean(x), metrics.aggregate_median(x), metrics.aggregate_iqm(x)]
        )

    out = {}
    for g in groups:
        # Each group's own draws: its CIs do not depend on what it is compared with.
        with seeded(seed):
            points, cis = library.get_interval_estimates(
                {g.label: g.matrix}, func, reps=reps, task_bootstrap=True
            )
        out[g.label] = {
            m: [float(points[g.label][i]), float(cis[g.label][0][i]), float(cis[g.label][1][i])]
            for i, m in enumerate(METRICS)
        }
    return out


def improvements(groups: list[Group], reps: int, seed: int) -> list[dict[str, Any]]:
    """P(X > Y) for every pair of groups, with its 95% CI. Groups evaluated on the same
    episode seeds compare seed by seed; others pool all their episodes."""
    from rliable import library, metrics

    out = []
    for i, x in enumerate(groups):
        for y in groups[i + 1 :]:
            paired = x.episode_seeds == y.episode_seeds and None not in x.episode_seeds
            mx, my = (x.matrix, y.matrix) if paired else (_pooled(x), _pooled(y))
            key = f"{x.label} > {y.label}"
            with seeded(seed):
                points, cis = library.get_interval_estimates(
                    {key: [mx, my]}, metrics.probability_of_improvement, reps=reps
                )
            out.append(
                {
                    "x": x.label,
                    "y": y.label,
                    "probability": float(np.ravel(points[key])[0]),
                    "ci": [float(np.ravel(cis[key])[0]), float(np.ravel(cis[key])[1])],
                    "paired_by_episode_seed": paired,
                }
            )
    return out


def _pooled(g: Group) -> np.ndarray:
    return g.matrix.reshape(-1, 1)


def curves(groups: list[Group], reps: int, seed: int) -> dict[str, dict[str, Any]]:
    """Fitness (each generation's best) and the real score over generations, IQM over a
    group's runs with 95% CIs. Real scores per generation exist when C trains in the real
    environment (the population's mean return); the final evaluation closes every curve."""
    from rliable import library, metrics

    def iqm_per_generation(x: np.ndarray) -> np.ndarray:
        return np.array([metrics.aggregate_iqm(x[..., g]) for g in range(x.shape[-1])])

    out: dict[str, dict[str, Any]] = {}
    for g in groups:
        gens = [s.get("generations") or [] for s in g.scores]
        n = min(len(rows) for rows in gens)
        entry: dict[str, Any] = {"generations": n, "train_in": g.header_values("train_in")}
        series = {"fitness": "best"}
        if entry["train_in"] == ["real"]:
            series["real"] = "mean"
        for name, key in series.items():
            if n == 0:
                continue
            values = np.array([[[row[key] for row in rows[:n]]] for rows in gens], dtype=float)
            with seeded(seed):
                points, cis = library.get_interval_estimates(
                    {g.label: values}, iqm_per_generation, reps=reps
                )
            entry[name] = {
                "iqm": points[g.label].tolist(),
                "low": cis[g.label][0].tolist(),
                "high": cis[g.label][1].tolist(),
            }
        entry["rounds"] = [p for s in g.scores for p in s.get("round_points") or []]
        out[g.label] = entry
    return out


def file_digest(path: Path) -> str:
    """The SHA-256 of a score file, read as every file of a run is (``fileio.read_regular``)."""
    return sha256_bytes(read_regular(Path(path)))


def describe(groups: list[Group]) -> dict[str, dict[str, Any]]:
    """What each group is made of: runs, recipes, devices, episodes, score files."""
    out = {}
    for g in groups:
        files = [r / FILENAME for r in g.runs]
        out[g.label] = {
            "runs": [str(r) for r in g.runs],
            "pipeline_seeds": [s["run"].get("seed") for s in g.scores],
            "episodes_per_run": int(g.matrix.shape[1]),
            "recipes": g.header_values("name"),
            "recipe_groups": [h[:12] for h in g.header_values("group_sha256")],
            "devices": sorted(
                {
                    str(ev.get("device"))
                    for s in g.scores
                    for ev in s["evaluations"].values()
                    if ev.get("where") == "real"
                }
            ),
            "train_in": g.header_values("train_in"),
            "score_files": {str(f): file_digest(f) for f in files if f.exists()},
        }
    return out


def write_json(path: Path, data: dict[str, Any]) -> None:
    from wmkit.storage.fileio import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def _colors(labels: list[str]) -> dict[str, Any]:
    import seaborn as sns

    return dict(zip(labels, sns.color_palette("colorblind", len(labels))))


def plot_distributions(groups: list[Group], path: Path, reps: int, seed: int) -> None:
    """Score distributions: the fraction of episodes (over runs) above each return tau, with
    95% CI bands (rliable's performance profiles)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from rliable import library, plot_utils

    from wmkit.record.plots import save_figure

    everything = np.concatenate([g.matrix.ravel() for g in groups])
    low, high = float(everything.min()), float(everything.max())
    taus = np.linspace(low - 1e-6, high + 1e-6 if high > low else low + 1.0, 101)
    profiles, cis = {}, {}
    for g in groups:
        with seeded(seed):
            p, c = library.create_performance_profile(
                {g.label: g.matrix}, taus, reps=reps, task_bootstrap=True
            )
        profiles.update(p)
        cis.update(c)
    fig, ax = plt.subplots(figsize=(7, 4))
    plot_utils.plot_performance_profiles(
        profiles,
        taus,
        performance_profile_cis=cis,
        colors=_colors([g.label for g in groups]),
        xlabel=r"return $\tau$",
        ylabel=r"fraction of episodes with return $> \tau$",
        labelsize="medium",
        ticklabelsize="medium",
        ax=ax,
    )
    ax.legend(loc="lower left")
    ax.set_title("Score distributions (95% stratified-bootstrap CIs)")
    save_figure(fig, path)


def plot_aggregates(aggs: dict[str, dict[str, list[float]]], path: Path) -> None:
    """Mean, median and IQM of each group with their CIs (rliable's interval plot)."""
    import matplotlib

    matplotlib.use("Agg")
    from rliable import plot_utils

    from wmkit.record.plots import save_figure

    labels = list(aggs)
    points = {k: np.array([aggs[k][m][0] for m in METRICS]) for k in labels}
    cis = {
        k: np.array([[aggs[k][m][1] for m in METRICS], [aggs[k][m][2] for m in METRICS]])
        for k in labels
    }
    fig, _ = plot_utils.plot_interval_estimates(
        points,
        cis,
        metric_names=["Mean", "Median", "IQM"],
        algorithms=labels,
        colors=_colors(labels),
        xlabel="return",
        xlabel_y_coordinate=-0.6 if len(labels) < 3 else -0.25,
    )
    save_figure(fig, path)


def plot_curves(groups: list[Group], data: dict[str, dict[str, Any]], aggs, path: Path) -> None:
    """Fitness and real score against generations, IQM over runs with 95% CI bands."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from wmkit.record.plots import save_figure

    colors = _colors([g.label for g in groups])
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for ax, name, title in (
        (axes[0], "fitness", "Controller fitness (each generation's best)"),
        (axes[1], "real", "Real score"),
    ):
        for g in groups:
            entry, color = data[g.label], colors[g.label]
            series = entry.get(name)
            if series:
                gens = np.arange(len(series["iqm"]))
                where = "/".join(entry["train_in"])
                label = g.label if name == "real" else f"{g.label} ({where})"
                ax.plot(gens, series["iqm"], color=color, label=label)
                ax.fill_between(gens, series["low"], series["high"], color=color, alpha=0.2)
            if name == "real":
                mid, lo, hi = aggs[g.label]["iqm"]
                x = entry["generations"]
                ax.errorbar(
                    [x],
                    [mid],
                    yerr=[[mid - lo], [hi - mid]],
                    fmt="o",
                    color=color,
                    capsize=4,
                    label=f"{g.label}: final evaluation",
                )
                rounds = entry["rounds"]
                if rounds:
                    ax.scatter(
                        [p["generation"] for p in rounds],
                        [p["mean"] for p in rounds],
                        marker="x",
                        color=color,
                        label=f"{g.label}: kept controller, iterate rounds",
                    )
        ax.set_title(title)
        ax.set_xlabel("generation")
        ax.set_ylabel("return (IQM over runs, 95% CI)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    save_figure(fig, path)


def markdown(
    info: dict[str, dict[str, Any]],
    aggs: dict[str, dict[str, list[float]]],
    pois: list[dict[str, Any]],
    evaluation: str,
    reps: int,
    figures: list[str],
) -> str:
    def ci(values: list[float]) -> str:
        return f"{values[0]:.1f} [{values[1]:.1f}, {values[2]:.1f}]"

    lines = [
        f"# Comparison of {len(aggs)} group(s)",
        "",
        f"Evaluation `{evaluation}`; point estimates with 95% stratified-bootstrap confidence "
        f"intervals ({reps} bootstrap replications, rliable), over runs (pipeline seeds) x "
        "episodes.",
        "",
        "| group | runs | episodes per run | recipe | devices | mean | median | IQM |",
        "|---|---:|---:|---|---|---:|---:|---:|",
    ]
    for label, a in aggs.items():
        d = info[label]
        recipes = (
            ", ".join(f"{n} ({h})" for n, h in zip(d["recipes"], d["recipe_groups"]))
            if len(d["recipes"]) == len(d["recipe_groups"])
            else ", ".join(d["recipes"])
        )
        lines.append(
            f"| {label} | {len(d['runs'])} | {d['episodes_per_run']} | {recipes} | "
            f"{', '.join(d['devices'])} | {ci(a['mean'])} | {ci(a['median'])} | {ci(a['iqm'])} |"
        )
    if pois:
        lines += [
            "",
            "| probability of improvement | P(X > Y) [95% CI] | paired by |",
            "|---|---:|---|",
        ]
        for p in pois:
            by = "episode seed" if p["paired_by_episode_seed"] else "pooled episodes"
            lines.append(
                f"| {p['x']} > {p['y']} | {p['probability']:.2f} "
                f"[{p['ci'][0]:.2f}, {p['ci'][1]:.2f}] | {by} |"
            )
    lines += ["", "Figures: " + ", ".join(f"[{f}]({f})" for f in figures) + ".", "", "Score files:"]
    for label, d in info.items():
        for path, digest in d["score_files"].items():
            lines.append(f"- {label}: `{path}` (sha256 `{digest[:16]}...`)")
    return "\n".join(lines) + "\n"
