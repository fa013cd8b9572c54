"""Checkpoints: one safetensors file holds the tensors and, in its header, the metadata and a
checksum of the tensor bytes, so a single atomic rename replaces all three together (two files
cannot be swapped at once: a kill between two renames once left new weights beside old metadata).
A ``.json`` copy of the metadata is written after it for people and tools; loading does not trust
it. Loading never unpickles anything."""

from __future__ import annotations

import json
import platform
import struct
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
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


def _serialise(
    tensors: dict[str, Any], metadata: dict[str, str] | None = None
) -> tuple[bytes, str]:
    if all(isinstance(v, np.ndarray) for v in tensors.values()):
        arrays = {k: np.array(v, order="C") for k, v in tensors.items()}
        return np_save(arrays, metadata=metadata), "numpy"
    parts = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    return torch_save(parts, metadata=metadata), "torch"


def _split(data: bytes) -> tuple[dict[str, Any], bytes]:
    """A safetensors file is an 8-byte little-endian header length, a JSON header, the tensors."""
    if len(data) < 8:
        raise ValueError("shorter than a safetensors header")
    (size,) = struct.unpack("<Q", data[:8])
    if 8 + size > len(data):
        raise ValueError("header runs past the end of the file")
    return json.loads(data[8 : 8 + size]), data[8 + size :]


def save_tensors(stem: Path, tensors: dict[str, Any], meta: dict[str, Any]) -> None:
    """Write ``stem.safetensors`` (tensors + metadata + checksum, atomically), then a readable
    ``stem.json`` copy of the metadata."""
    weights, info = _paths(stem)
    plain, kind = _serialise(tensors)
    full = {
        **meta,
        "format": kind,
        "sha256": sha256_bytes(_split(plain)[1]),
        "versions": package_versions(),
    }
    data, _ = _serialise(tensors, {"wmkit": json.dumps(full, sort_keys=True)})
    atomic_write_bytes(weights, data)
    atomic_write_json(info, full)


def exists(stem: Path) -> bool:
    return _paths(stem)[0].exists()


def _read_meta(weights: Path, info: Path, data: bytes) -> tuple[dict[str, Any], bytes]:
    """The metadata and the bytes its checksum covers; files written before the metadata moved
    into the header fall back to the ``.json`` and a checksum of the whole file."""
    try:
        header, body = _split(data)
    except ValueError as exc:
        raise WmkitError(f"{weights}: unreadable checkpoint ({exc})") from None
    extra = header.get("__metadata__") if isinstance(header, dict) else None
    embedded = extra.get("wmkit") if isinstance(extra, dict) else None
    if embedded is not None:
        try:
            return json.loads(embedded), body
        except ValueError as exc:
            raise WmkitError(f"{weights}: damaged checkpoint metadata ({exc})") from None
    if not info.exists():
        raise WmkitError(f"{info}: checkpoint file not found")
    try:
        return json.loads(info.read_text()), data
    except ValueError as exc:
        raise WmkitError(f"{info}: damaged checkpoint metadata ({exc})") from None


def load_tensors(stem: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a checkpoint, verifying its checksum; errors name the file and what to do."""
    weights, info = _paths(stem)
    if not weights.exists():
        raise WmkitError(f"{weights}: checkpoint file not found")
    data = weights.read_bytes()
    meta, covered = _read_meta(weights, info, data)
    if sha256_bytes(covered) != meta.get("sha256"):
        raise WmkitError(
            f"{weights}: checkpoint is corrupted (checksum mismatch); delete it and rerun "
            f"'wmkit run' to retrain that stage"
        )
    try:
        tensors = np_load(data) if meta.get("format") == "numpy" else torch_load(data)
    except SafetensorError as exc:
        raise WmkitError(f"{weights}: unreadable checkpoint ({exc})") from None
    return tensors, meta
