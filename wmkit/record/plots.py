"""The PNGs of a run: loss curves, CMA-ES fitness, and real-vs-decoded frames."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from wmkit.storage.fileio import atomic_write_bytes  # noqa: E402


def save_figure(fig: Any, path: Path) -> None:
    """Write ``fig`` as a PNG through an atomic write, and close it."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def plot_curves(
    rows: list[dict[str, Any]], keys: list[str], path: Path, title: str, xlabel: str = "epoch"
) -> None:
    """One line per metric key against ``step``."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for key in keys:
        pts = [(r["step"], r[key]) for r in rows if key in r]
        if pts:
            xs, ys = zip(*pts)
            ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, label=key)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, path)


def plot_fitness(rows: list[dict[str, Any]], path: Path, title: str = "CMA-ES fitness") -> None:
    """Best, mean and worst return per generation, with the best-so-far line."""
    fig, ax = plt.subplots(figsize=(6, 4))
    gens = [r["step"] for r in rows]
    for key, style in (("best", "-"), ("mean", "-"), ("worst", ":")):
        ax.plot(gens, [r[key] for r in rows], style, label=key)
    ax.plot(gens, np.maximum.accumulate([r["best"] for r in rows]), "k--", label="best so far")
    ax.set_title(title)
    ax.set_xlabel("generation")
    ax.set_ylabel("return")
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, path)


def image_grid(rows: list[np.ndarray], labels: list[str], path: Path, title: str) -> None:
    """Rows of uint8 frames [N, H, W, C], one labelled row each (e.g. real vs decoded)."""
    n = len(rows[0])
    fig, axes = plt.subplots(len(rows), n, figsize=(n * 1.2, len(rows) * 1.3), squeeze=False)
    for r, (frames, label) in enumerate(zip(rows, labels)):
        for c in range(n):
            ax = axes[r][c]
            ax.imshow(frames[c])
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label)
    fig.suptitle(title)
    save_figure(fig, path)


def plot_guard(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """The exploit guard's checks: rank agreement above, dream vs real returns below."""
    gens = [r["step"] for r in rows]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6, 6), sharex=True)
    top.plot(gens, [r["agreement"] for r in rows], "o-", label="pairs in order")
    top.plot(gens, [r["correlation"] for r in rows], "s--", label="correlation")
    top.axhline(0.5, color="grey", lw=0.8)
    top.set_ylim(-1.05, 1.05)
    top.set_ylabel("dream vs real ranking")
    top.legend()
    bottom.plot(gens, [r["favourite_dream"] for r in rows], "o-", label="dream favourite (dream)")
    bottom.plot(gens, [r["favourite_real"] for r in rows], "s-", label="dream favourite (real)")
    bottom.plot(gens, [r["real_mean"] for r in rows], ":", label="picked candidates (real)")
    bottom.set_xlabel("generation")
    bottom.set_ylabel("return")
    bottom.legend()
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    save_figure(fig, path)
