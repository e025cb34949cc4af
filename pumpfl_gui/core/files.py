"""Writing files so that no reader ever sees half of one (core layer; stdlib only)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to a unique temporary file beside ``path``, then rename it into place.

    The rename is atomic, and the temporary name is unique per call, so concurrent writers
    (threads or processes) never trample each other's half-written files.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def private_dir(path: str | os.PathLike[str]) -> Path:
    """Make ``path`` (and its parents) and leave it readable by this user only (0700)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def write_private(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write a secret (a join code, a key) atomically, readable by this user only (0600)."""
    raw = data.encode() if isinstance(data, str) else data
    path = write_atomic(path, raw)
    os.chmod(path, 0o600)
    return path
