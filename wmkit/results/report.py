"""``wmkit report``'s engine: one self-contained HTML page about a run.

Everything is inside the file: images are inlined as base64 PNGs and the style sheet is in
the page, so it opens from disk in any browser, with no server and no network. Every string
taken from the run directory is escaped: a run may come from someone else.
"""

from __future__ import annotations

import base64
import html
import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from wmkit.core.errors import WmkitError
from wmkit.storage.fileio import inside_path, read_regular
from wmkit.storage.rundir import RunDir
from wmkit.storage.scores import PIPELINE_EVALUATION, scores_of

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1100px; padding: 0 1em; color: #1d1d1f; background: #fff; }
h1 { margin-bottom: 0.1em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em;
       margin-top: 1.6em; }
.sub { color: #666; margin-top: 0; }
.headline { font-size: 1.4em; background: #f3f6fb; padding: 0.6em 0.9em; border-radius: 6px; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; }
th { background: #f5f5f5; } td.l, th.l { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.3em 0; }
figure { margin: 0.8em 0; display: inline-block; vertical-align: top; max-width: 100%; }
figcaption { color: #555; font-size: 0.9em; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
.missing { color: #888; font-style: italic; }
figure.strip img { max-height: 640px; width: auto; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _img(data: bytes, alt: str) -> str:
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return f'<p class="missing">{_e(alt)}: not a PNG file, left out</p>'
    b64 = base64.b64encode(data).decode("ascii")
    return f'<img src="data:image/png;base64,{b64}" alt="{_e(alt)}">'


def _read(run: RunDir, path: Path) -> bytes | None:
    """A file of the run, or None: read only when it is a regular file and every folder on
    its way stays inside the run (``fileio.inside_path``), so that a run from elsewhere
    cannot make the report read a device or a file outside it."""
    try:
        return read_regular(inside_path(run.root, path.relative_to(run.root).as_posix()))
    except (WmkitError, ValueError):
        return None


def _figure(run: RunDir, path: Path, caption: str, kind: str = "") -> str:
    if not path.exists() or path.is_symlink():
        return ""
    data = _read(run, path)
    if data is None:
        return ""
    klass = f' class="{kind}"' if kind else ""
    image = _img(data, caption)
    return f"<figure{klass}>{image}<figcaption>{_e(caption)}</figcaption></figure>"


def _table(header: list[str], rows: list[list[Any]], left: int = 1) -> str:
    def cells(values: list[Any], tag: str) -> str:
        return "".join(
            f"<{tag}{' class=l' if i < left else ''}>{_e(v)}</{tag}>" for i, v in enumerate(values)
        )

    body = "".join(f"<tr>{cells(r, 'td')}</tr>" for r in rows)
    return f"<table><tr>{cells(header, 'th')}</tr>{body}</table>"


def _read_json(run: RunDir, path: Path) -> Any:
    data = _read(run, path) if path.exists() else None
    try:
        return json.loads(data) if data is not None else None
    except (ValueError, UnicodeDecodeError):
        return None


def _histogram(episodes: list[dict[str, Any]], title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    returns = np.array([e["return"] for e in episodes], dtype=float)
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.hist(returns, bins=min(30, max(5, len(returns) // 2)), color="#4c72b0", edgecolor="white")
    ax.axvline(returns.mean(), color="k", linestyle="--", label=f"mean {returns.mean():.1f}")
    ax.set_xlabel("return")
    ax.set_ylabel("episodes")
    ax.set_title(title)
    ax.legend()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _iqm_ci(returns: list[float], reps: int) -> tuple[float, float, float] | None:
    """IQM of one run's episodes with a 95% bootstrap CI over episodes (rliable)."""
    try:
        from rliable import library, metrics

        from wmkit.results.compare import seeded
    except ImportError:
        return None
    matrix = np.asarray(returns, dtype=float)[None, :]
    with seeded(0):
        points, cis = library.get_interval_estimates(
            {"run": matrix}, metrics.aggregate_iqm, reps=reps, task_bootstrap=True
        )
    low, high = np.ravel(cis["run"])
    return float(np.ravel(points["run"])[0]), float(low), float(high)


def build_report(root: Path, reps: int = 2000) -> str:
    """The HTML of ``root``'s report."""
    run = RunDir(root)
    if not run.recipe_path.is_file():
        raise WmkitError(f"{root}: not a wmkit run directory (no recipe.yaml)")
    recipe_text = read_regular(run.recipe_path).decode(errors="replace")
    try:
        scores = scores_of(run.root)
    except WmkitError:
        scores = None
    header = (scores or {}).get("run") or {}
    stages = _read_json(run, run.stages_path) or {}
    evaluation = _read_json(run, run.eval_path)
    name = header.get("name") or run.root.name
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        # No script, no outside resource: the page is data only.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'\">",
        f"<title>wmkit report: {_e(name)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{_e(name)}</h1>",
        f'<p class="sub">{_e(run.root)} &middot; written {_e(time.strftime("%Y-%m-%d %H:%M"))}</p>',
    ]
    components = header.get("components") or {}
    versions = header.get("versions") or {}
    facts = [
        ["environment", header.get("env", "?")],
        ["pipeline seed", header.get("seed", "?")],
        ["components", ", ".join(f"{r} {n}" for r, n in components.items()) or "?"],
        ["controller trained in", header.get("train_in", "?")],
        ["recipe sha256", str(header.get("recipe_sha256", "?"))[:16]],
        [
            "wmkit / torch / python",
            " / ".join(versions.get(k, "?") for k in ("wmkit", "torch", "python")),
        ],
        ["platform", versions.get("platform", "?")],
        ["cpu", versions.get("cpu", "not recorded")],
    ]
    parts.append(_headline(evaluation, scores, reps))
    parts += ["<h2>Run</h2>", _table(["", "this run"], facts, left=2)]
    parts += _stage_times(stages)
    parts += _curves(run)
    parts += _actor_health(run)
    parts += _evaluations(run, scores)
    parts += _gap_tables(run)
    parts += _sweep(run)
    parts += ["<h2>Recipe</h2>", f"<pre>{_e(recipe_text)}</pre>", "</body></html>"]
    return "\n".join(p for p in parts if p)


def _headline(evaluation: Any, scores: dict[str, Any] | None, reps: int) -> str:
    if not isinstance(evaluation, dict) or "mean" not in evaluation:
        return '<p class="headline missing">not evaluated yet</p>'
    text = (
        f"real score {evaluation['mean']:.1f} &plusmn; {evaluation.get('std', 0):.1f} over "
        f"{_e(evaluation.get('episodes'))} episodes"
    )
    ev = (scores or {}).get("evaluations", {}).get(PIPELINE_EVALUATION)
    if ev and len(ev["episodes"]) > 1:
        iqm = _iqm_ci([e["return"] for e in ev["episodes"]], reps)
        if iqm:
            text += f"; IQM {iqm[0]:.1f} [95% CI {iqm[1]:.1f}, {iqm[2]:.1f}]"
    dream = evaluation.get("dream")
    if isinstance(dream, dict) and "mean" in dream:
        text += (
            f"<br>dream score {dream['mean']:.1f} &plusmn; {dream.get('std', 0):.1f} over "
            f"{_e(dream.get('episodes'))} dreams at tau {_e(dream.get('temperature'))}"
        )
    return f'<p class="headline">{text}</p>'


def _stage_times(stages: dict[str, Any]) -> list[str]:
    if not isinstance(stages, dict) or not stages:
        return ["<h2>Stages</h2>", '<p class="missing">no stage finished yet</p>']
    rows, total = [], 0.0
    records = [(n, r) for n, r in stages.items() if isinstance(r, dict)]
    records.sort(key=lambda item: float(item[1].get("finished") or 0))  # in the order run
    for name, record in records:
        seconds = float(record.get("seconds", 0) or 0)
        total += seconds
        finished = record.get("finished")
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(finished)) if finished else ""
        summary = ", ".join(
            f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
            for k, v in record.items()
            if k not in ("seconds", "finished") and not isinstance(v, list)
        )
        rows.append([name, f"{seconds:.1f}", when, summary])
    rows.append(["total", f"{total:.1f}", "", ""])
    return ["<h2>Stages</h2>", _table(["stage", "seconds", "finished", "summary"], rows)]


def _curves(run: RunDir) -> list[str]:
    figures = [
        _figure(run, run.plots / "vision_loss.png", "V: training loss per epoch"),
        _figure(run, run.plots / "memory_loss.png", "M: training loss per epoch"),
        _figure(run, run.plots / "controller_fitness.png", "C: fitness per generation"),
    ]
    guards = [
        _figure(run, p, f"exploit guard: {p.stem}") for p in sorted(run.plots.glob("*_guard.png"))
    ]
    images = [
        _figure(run, run.plots / "reconstructions.png", "V: real frames (top) and decoded (bottom)")
    ]
    strips = sorted(run.videos.glob("*_strip.png"), key=lambda p: p.lstat().st_mtime, reverse=True)[
        :3
    ]
    images += [
        _figure(run, p, f"dream strip: {p.stem.removesuffix('_strip')}", "strip") for p in strips
    ]
    out = ["<h2>Training curves</h2>", *figures] if any(figures) else []
    if any(guards):
        out += ["<h2>Exploit guard</h2>", *guards]
    out += ["<h2>What V and M see</h2>", *images] if any(images) else []
    if not strips:
        out.append(
            '<p class="missing">no dream strip yet: <code>wmkit dream --checkpoint RUN</code> '
            "writes one</p>"
        )
    return out


# train_online's actor diagnostics (the actor_critic's), in the order the table shows them.
ACTOR_HEALTH = ["entropy_share", "return_scale", "advantage_abs", "actor_grad_norm"]


def _actor_health(run: RunDir, rows_shown: int = 12) -> list[str]:
    """An online run's actor, episode by episode (evenly spaced rows, the last included): an
    entropy share that stays near 1 with a flat return is an actor that learns nothing."""
    data = _read(run, run.metrics / "train_online.jsonl") if run.metrics.exists() else None
    rows = []
    for line in (data or b"").decode(errors="replace").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            break
    rows = [r for r in rows if isinstance(r, dict) and "entropy_share" in r]
    if not rows:
        return []
    stds = sorted(k for k in rows[-1] if str(k).startswith("action_std_"))
    keys = ["episode_return", *ACTOR_HEALTH, *stds]
    picks = sorted({round(i * (len(rows) - 1) / max(rows_shown - 1, 1)) for i in range(rows_shown)})
    table = [
        [r.get("step", "?"), r.get("env_steps", "?")]
        + [f"{r[k]:.3g}" if isinstance(r.get(k), (int, float)) else "" for k in keys]
        for r in (rows[i] for i in picks)
    ]
    return [
        "<h2>Actor</h2>",
        '<p class="sub">each row is one episode\'s mean over its updates; entropy_share is 1 '
        "at the widest distribution the actor can express, 0 at the narrowest</p>",
        _table(["episode", "env steps", *keys], table),
    ]


def _evaluations(run: RunDir, scores: dict[str, Any] | None) -> list[str]:
    if not scores or not scores.get("evaluations"):
        return []
    rows = []
    for key, ev in scores["evaluations"].items():
        returns = np.array([e["return"] for e in ev["episodes"]], dtype=float)
        if not len(returns):
            continue
        rows.append(
            [
                key,
                ev.get("where", "?"),
                ev.get("policy", "?"),
                len(returns),
                f"{returns.mean():.1f}",
                f"{returns.std():.1f}",
                f"{returns.min():.1f}",
                f"{returns.max():.1f}",
            ]
        )
    out = ["<h2>Evaluations</h2>"]
    ev = scores["evaluations"].get(PIPELINE_EVALUATION)
    if ev and ev["episodes"]:
        png = _histogram(
            ev["episodes"], f"real returns of the final controller ({len(ev['episodes'])} episodes)"
        )
        out.append(
            f"<figure>{_img(png, 'histogram of evaluation returns')}"
            "<figcaption>evaluate stage: returns per episode</figcaption></figure>"
        )
    header = ["evaluation", "where", "policy", "episodes", "mean", "std", "min", "max"]
    out.append(_table(header, rows, left=3))
    out.append(f'<p class="sub">per-episode scores: {_e(run.root / "scores.json")}</p>')
    return out


def _gap_tables(run: RunDir) -> list[str]:
    out = []
    for path in sorted((run.root / "evals").glob("gap_*.json")):
        data = _read_json(run, path)
        if not isinstance(data, dict) or not isinstance(data.get("policies"), list):
            continue
        rows = [
            [
                p.get("policy"),
                f"{p.get('dream_mean', 0):.1f} ± {p.get('dream_std', 0):.1f}",
                f"{p.get('dream_steps', 0):.0f}",
                f"{p.get('real_mean', 0):.1f} ± {p.get('real_std', 0):.1f}",
                f"{p.get('real_steps', 0):.0f}",
            ]
            for p in data["policies"]
            if isinstance(p, dict)
        ]
        out += [
            f"<h3>{_e(path.name)}: tau {_e(data.get('temperature'))}, "
            f"{_e(data.get('episodes'))} episodes per policy</h3>",
            _table(["policy", "dream", "dream steps", "real", "real steps"], rows),
            f"<p>pairs the dream orders as reality does: {_e(data.get('pairs_in_order'))} of "
            f"{_e(data.get('pairs'))}</p>",
        ]
    return ["<h2>Dream vs real (wmkit gap)</h2>", *out] if out else []


def _sweep(run: RunDir) -> list[str]:
    results = _read_json(run, run.root / "sweep" / "results.json")
    if not isinstance(results, dict) or not results:
        return []
    rows = []
    for key, r in results.items():
        if (
            isinstance(r, dict)
            and isinstance(r.get("dream"), dict)
            and isinstance(r.get("real"), dict)
        ):
            rows.append(
                [
                    key,
                    f"{r['dream'].get('mean', 0):.1f} ± {r['dream'].get('std', 0):.1f}",
                    f"{r['real'].get('mean', 0):.1f} ± {r['real'].get('std', 0):.1f}",
                    r["real"].get("episodes", ""),
                ]
            )
    return [
        "<h2>Temperature sweep</h2>",
        _table(["temperature", "dream score", "real score", "real episodes"], rows),
        _figure(
            run, run.plots / "temperature_sweep.png", "trained in the dream at tau: dream vs real"
        ),
    ]
