"""Checkpoints: one safetensors file holds the tensors and, in its header, the metadata and a
checksum, so a single atomic rename replaces all three together (two files cannot be swapped at
once: a kill between two renames once left new weights beside old metadata). A ``.json`` copy of
the metadata is written after it for people and tools; loading does not trust it. Loading never
unpickles anything.

The checksum (``checksum_version`` 2) covers the whole file but for its own value: every
tensor's dtype, shape and offsets, the metadata, and the tensor bytes. A flipped ``F64`` or a
changed ``generation`` is found as surely as a flipped weight. Files written before it (no
``checksum_version``) hold a checksum of the tensor bytes only, and are still read and checked
that way; the next save of the same checkpoint writes version 2.
"""

from __future__ import annotations

import functools
import json
import platform
import struct
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

from wmkit.core.errors import WmkitError
from wmkit.storage.fileio import (
    atomic_write_bytes,
    atomic_write_json,
    read_json,
    read_regular,
    sha256_bytes,
)

CHECKSUM_VERSION = 2


def package_versions() -> dict[str, str]:
    """Versions recorded with every checkpoint, so a result can be traced to its software,
    and the processor: the same code and packages on another CPU can give other returns
    (docs/results.md, "The same code on another machine")."""
    out = {"python": sys.version.split()[0], "platform": platform.platform(), "cpu": cpu_name()}
    for pkg in ("wmkit", "torch", "numpy", "gymnasium", "cma"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


@functools.cache
def cpu_name() -> str:
    """The processor's model name (Linux's /proc/cpuinfo) and the vector instructions torch
    dispatches to, such as ``AMD EPYC (AVX512)``; read once per process, not at every save."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name} ({torch.backends.cpu.get_cpu_capability()})"


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


def _index(header: dict[str, Any]) -> dict[str, Any]:
    """The header's tensor entries (dtype, shape, data offsets), without the metadata."""
    return {k: v for k, v in header.items() if k != "__metadata__"}


def _digest(header: dict[str, Any], meta: dict[str, Any], body: bytes) -> str:
    """Checksum version 2: the tensor index, any other header metadata, wmkit's metadata
    without the checksum itself, then the tensor bytes."""
    extra = header.get("__metadata__") or {}
    covered = {
        "tensors": _index(header),
        "other_metadata": {k: v for k, v in extra.items() if k != "wmkit"},
        "wmkit": {k: v for k, v in meta.items() if k != "sha256"},
    }
    text = json.dumps(covered, sort_keys=True, separators=(",", ":"))
    return sha256_bytes(text.encode() + b"\0" + body)


def save_tensors(stem: Path, tensors: dict[str, Any], meta: dict[str, Any]) -> None:
    """Write ``stem.safetensors`` (tensors + metadata + checksum, atomically), then a readable
    ``stem.json`` copy of the metadata."""
    weights, info = _paths(stem)
    plain, kind = _serialise(tensors)
    header, body = _split(plain)
    full = {
        **meta,
        "format": kind,
        "checksum_version": CHECKSUM_VERSION,
        "versions": package_versions(),
    }
    # The metadata changes neither the tensor index nor the bytes, so the checksum of the
    # file to come can be taken from the file without it.
    full["sha256"] = _digest(header, full, body)
    data, _ = _serialise(tensors, {"wmkit": json.dumps(full, sort_keys=True)})
    if _index(_split(data)[0]) != _index(header):
        raise RuntimeError("safetensors laid the tensors out differently with metadata")
    atomic_write_bytes(weights, data)
    atomic_write_json(info, full)


def exists(stem: Path) -> bool:
    return _paths(stem)[0].exists()


def _read_meta(weights: Path, info: Path, data: bytes) -> tuple[dict[str, Any], str]:
    """The metadata and the checksum the file's content gives, taken the way the metadata's
    ``checksum_version`` says. Files written before the metadata moved into the header fall
    back to the ``.json`` and a checksum of the whole file."""
    try:
        header, body = _split(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WmkitError(f"{weights}: unreadable checkpoint ({exc})") from None
    if not isinstance(header, dict):
        raise WmkitError(f"{weights}: unreadable checkpoint (the header is not a mapping)")
    extra = header.get("__metadata__")
    embedded = extra.get("wmkit") if isinstance(extra, dict) else None
    if embedded is None:
        if not info.exists():
            raise WmkitError(f"{info}: checkpoint file not found")
        meta = read_json(info)
        if not isinstance(meta, dict):
            raise WmkitError(f"{info}: damaged checkpoint metadata (not a mapping)")
        return meta, sha256_bytes(data)
    try:
        meta = json.loads(embedded)
    except (ValueError, TypeError) as exc:
        raise WmkitError(f"{weights}: damaged checkpoint metadata ({exc})") from None
    if not isinstance(meta, dict):
        raise WmkitError(f"{weights}: damaged checkpoint metadata (not a mapping)")
    version = meta.get("checksum_version", 1)
    if version == 1:
        return meta, sha256_bytes(body)  # written before version 2: the tensor bytes only
    if version == CHECKSUM_VERSION:
        return meta, _digest(header, meta, body)
    raise WmkitError(f"{weights}: damaged checkpoint metadata (checksum_version {version!r})")


def load_tensors(stem: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a checkpoint, verifying its checksum; errors name the file and what to do."""
    weights, info = _paths(stem)
    if not weights.exists() and not weights.is_symlink():
        raise WmkitError(f"{weights}: checkpoint file not found")
    data = read_regular(weights)
    meta, actual = _read_meta(weights, info, data)
    if actual != meta.get("sha256"):
        raise WmkitError(
            f"{weights}: checkpoint is corrupted (checksum mismatch); delete it and rerun "
            f"'wmkit run' to retrain that stage"
        )
    try:
        tensors = np_load(data) if meta.get("format") == "numpy" else torch_load(data)
    except SafetensorError as exc:
        raise WmkitError(f"{weights}: unreadable checkpoint ({exc})") from None
    return tensors, meta
