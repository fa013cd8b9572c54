"""Atomic file writes: a crash leaves either the old file or the new one, never half of one.

Also the checks every path read from a run directory goes through: a name recorded in a
manifest, or a file wmkit expects, must be a regular file inside its own folder, so that a
run directory from elsewhere can neither point wmkit at ``/dev/zero`` nor make it delete or
read a file outside the run.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from wmkit.core.errors import WmkitError

# Failures of the disk, not of wmkit: each ends a command with one line, and rerunning the
# same command once they are fixed resumes where it stopped.
DISK_ERRORS = {
    errno.ENOSPC: "free some space, then run the same command again (it resumes)",
    errno.EDQUOT: "free some space, then run the same command again (it resumes)",
    errno.EROFS: "the folder is read-only; make it writable or choose another",
    errno.EACCES: "no permission to write there; make it writable or choose another",
    errno.EPERM: "no permission to write there; make it writable or choose another",
}

# Temporary files of atomic writes: ``.NAME.RANDOM.tmp`` next to their target.
TMP_PREFIX, TMP_SUFFIX = ".", ".tmp"


def disk_error(path: Path | str, exc: OSError) -> WmkitError:
    """A ``WmkitError`` for an OS error in ``DISK_ERRORS``, naming the file."""
    what = exc.strerror or os.strerror(exc.errno or 0)
    return WmkitError(f"{path}: cannot write: {what}; {DISK_ERRORS[exc.errno]}")


def _umask() -> int:
    """The process's umask, read without changing it where Linux allows."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync it, then rename over ``path``.
    The file gets the mode a plain ``open`` would give it (0666 less the umask)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    except OSError as exc:
        if exc.errno in DISK_ERRORS:
            raise disk_error(path, exc) from None
        raise
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~_umask())  # mkstemp makes it 0600
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in DISK_ERRORS:
            raise disk_error(path, exc) from None
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def json_text(data: Any) -> str:
    """How every JSON file of a run is written (so that its checksum can be taken)."""
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json_text(data))


def npz_bytes(arrays: dict[str, np.ndarray], compress: bool = True) -> bytes:
    """Serialise arrays as .npz in memory (loaded later with allow_pickle=False)."""
    buf = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(buf, **arrays)
    return buf.getvalue()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def is_plain_name(name: Any) -> bool:
    """A file name with no folder in it: not empty, no separator, not ``.`` or ``..``."""
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and not any(c in name for c in ("/", "\\", "\0"))
    )


def inside(folder: Path, name: str) -> Path:
    """``folder / name`` for a plain file name that stays in ``folder`` once links are
    followed; anything else (``../x``, ``/etc/passwd``, a link out) is refused."""
    folder = Path(folder)
    if not is_plain_name(name):
        raise WmkitError(f"{folder}: {name!r} is not a file name inside this folder")
    path = folder / name
    if not path.resolve().is_relative_to(folder.resolve()):
        raise WmkitError(f"{path}: leads outside {folder}; refused")
    return path


def inside_path(root: Path, relative: str) -> Path:
    """``root / relative`` for a relative path such as ``checkpoints/vision.safetensors``,
    each of whose steps stays in the folder before it once links are followed (``inside``):
    so the whole path stays in ``root``."""
    path = Path(root)
    for part in str(relative).split("/"):
        path = inside(path, part)
    return path


def check_regular(path: Path) -> None:
    """Refuse what is not a regular file inside its own folder (a device, a pipe, a folder,
    a link that leads elsewhere): reading ``/dev/zero`` would never end."""
    path = Path(path)
    inside(path.parent, path.name)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise WmkitError(f"{path}: file not found") from None
    except OSError as exc:
        raise WmkitError(f"{path}: cannot read ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        raise WmkitError(f"{path}: not a regular file; refused")


def read_regular(path: Path) -> bytes:
    """The bytes of a regular file inside its folder (see ``check_regular``)."""
    check_regular(path)
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise WmkitError(f"{path}: cannot read ({exc.strerror})") from None


def read_json(path: Path) -> Any:
    """A JSON file a run wrote, or a one-line error naming it."""
    data = read_regular(path)
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WmkitError(f"{path}: damaged JSON ({exc})") from None
