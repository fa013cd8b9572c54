"""Checkpoints: tensors in safetensors, metadata in JSON. Loading never unpickles anything."""

from __future__ import annotations

import json
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load as np_load
from safetensors.numpy import save as np_save
from safetensors.torch import load as torch_load
from safetensors.torch import save as torch_save

from wmkit.errors import WmkitError
from wmkit.fileio import atomic_write_bytes, atomic_write_json, sha256_bytes


def package_versions() -> dict[str, str]:
    """Versions recorded with every checkpoint, so a result can be traced to its software."""
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for pkg in ("wmkit", "torch", "numpy", "gymnasium", "cma"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def _paths(stem: Path) -> tuple[Path, Path]:
    stem = Path(stem)
    return stem.with_suffix(".safetensors"), stem.with_suffix(".json")


def save_tensors(stem: Path, tensors: dict[str, Any], meta: dict[str, Any]) -> None:
    """Write ``stem.safetensors`` then ``stem.json``; the JSON (with the checksum) lands last,
    so a checkpoint whose JSON exists is complete."""
    weights, info = _paths(stem)
    if all(isinstance(v, np.ndarray) for v in tensors.values()):
        data = np_save({k: np.array(v, order="C") for k, v in tensors.items()})
        kind = "numpy"
    else:
        data = torch_save({k: v.detach().cpu().contiguous() for k, v in tensors.items()})
        kind = "torch"
    atomic_write_bytes(weights, data)
    atomic_write_json(
        info, {**meta, "format": kind, "sha256": sha256_bytes(data), "versions": package_versions()}
    )


def exists(stem: Path) -> bool:
    weights, info = _paths(stem)
    return weights.exists() and info.exists()


def load_tensors(stem: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a checkpoint, verifying its checksum; errors name the file and what to do."""
    weights, info = _paths(stem)
    for path in (info, weights):
        if not path.exists():
            raise WmkitError(f"{path}: checkpoint file not found")
    try:
        meta = json.loads(info.read_text())
    except ValueError as exc:
        raise WmkitError(f"{info}: damaged checkpoint metadata ({exc})") from None
    data = weights.read_bytes()
    if sha256_bytes(data) != meta.get("sha256"):
        raise WmkitError(
            f"{weights}: checkpoint is corrupted (checksum mismatch); delete it and rerun "
            f"'wmkit run' to retrain that stage"
        )
    try:
        tensors = np_load(data) if meta.get("format") == "numpy" else torch_load(data)
    except SafetensorError as exc:
        raise WmkitError(f"{weights}: unreadable checkpoint ({exc})") from None
    return tensors, meta


def to_numpy_state(state: dict[str, Any]) -> dict[str, np.ndarray]:
    return {
        k: (v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v))
        for k, v in state.items()
    }
