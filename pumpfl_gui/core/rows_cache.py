"""The rows cache: a long CSV read once opens in about a second the next time (core layer).

What :func:`~pumpfl_gui.core.dataset.load_sensor_csv` made of a long file is kept in the
user's cache folder (``PumpFL/rows``, readable by the user only; ``PUMPFL_CACHE_DIR`` moves
it): its readings as raw float32 rows (written there batch by batch as the file is read, see
:class:`RowsFile`, and mapped into memory read-only: a caller that would change them is told
so at once), its times, labels and pump statuses (one byte a row) as ``.npy``, and what the loader
said (sensors, dropped columns, notes) in ``meta.json``, written last. The key is the file's
resolved path, size and modification time, a hash of its first and last 64 KB, the loader's
arguments and this format's version: a file changed in any of these is read again. The
newest ``KEEP`` entries are kept, as long as they hold ``KEEP_BYTES`` together (the newest
always: a 20 million-row file of 52 sensors is 4 GB of rows).

A cache that cannot be read or written is passed over (logged), never an error: the file is
simply read again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import platformdirs

from .column_roles import PUMP_STATUSES
from .paths import APP_NAME

log = logging.getLogger(__name__)

FORMAT = 3
KEEP = 4  # entries kept, newest first ...
KEEP_BYTES = 8 << 30  # ... while they hold this much together (the newest is kept whatever its size)
EDGE_BYTES = 1 << 16
_ARRAYS = ("timestamps", "status", "labels")  # beside the readings, which are raw float32 rows
VALUES = "values.f32"


def folder() -> Path:
    """The cache's folder; ``PUMPFL_CACHE_DIR`` moves it (a benchmark's own, empty one)."""
    if os.environ.get("PUMPFL_CACHE_DIR"):
        return Path(os.environ["PUMPFL_CACHE_DIR"])
    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)) / "rows"


def key(path: Path, sensors: list[str] | None, min_rows: int, max_missing: float) -> str | None:
    """The cache key of ``path`` read with these arguments; None when the file cannot be read."""
    try:
        path = path.resolve()
        stat = path.stat()
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            digest.update(fh.read(EDGE_BYTES))
            fh.seek(max(stat.st_size - EDGE_BYTES, 0))
            digest.update(fh.read(EDGE_BYTES))
    except OSError:
        return None
    about = [FORMAT, str(path), stat.st_size, stat.st_mtime_ns, digest.hexdigest(), sensors, min_rows, max_missing]
    return hashlib.sha256(json.dumps(about).encode()).hexdigest()[:32]


def load(entry: str | None, path: Path) -> dict | None:
    """What ``entry`` holds, as the fields of a :class:`~pumpfl_gui.core.dataset.SensorData`
    of ``path`` (its rows mapped read-only), or None."""
    here = folder() / entry if entry else None
    if here is None or not (here / "meta.json").is_file():
        return None
    try:
        meta = json.loads((here / "meta.json").read_text(encoding="utf-8"))
        values = np.memmap(here / VALUES, dtype=np.float32, mode="r", shape=tuple(meta["shape"]))
        arrays = {
            name: np.load(here / f"{name}.npy", mmap_mode="r", allow_pickle=False) if name in meta["arrays"] else None
            for name in _ARRAYS
        }
        if arrays["status"] is not None:  # kept as codes: one byte a row
            arrays["status"] = np.array(meta["status_names"], dtype=object)[arrays["status"]]
        os.utime(here)  # newest first when entries are dropped
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("rows cache entry %s unreadable (%s); reading the file again", here, exc)
        return None
    return {**meta["fields"], "path": path, "values": values, **arrays}


class RowsFile:
    """A cache entry's readings, written a batch of rows at a time as a long file is read, then
    mapped into memory: the rows are held once, in the cache, never gathered in memory first."""

    def __init__(self, here: Path) -> None:
        self.here = here
        (here / "meta.json").unlink(missing_ok=True)  # an entry without it is incomplete
        self._fh = open(here / VALUES, "wb")  # noqa: SIM115 (closed in mapped())
        self.rows = 0

    def write(self, rows: np.ndarray) -> None:
        self._fh.write(memoryview(np.ascontiguousarray(rows, dtype=np.float32)))
        self.rows += len(rows)

    def rewind(self) -> None:
        """Forget the rows written so far (the file is read again from its start)."""
        self._fh.seek(0)
        self._fh.truncate()
        self.rows = 0

    def mapped(self, sensors: int) -> np.ndarray:
        """The rows written, mapped read-write (fixes made to them are the cache's too)."""
        self._fh.close()
        if not self.rows:
            return np.empty((0, sensors), dtype=np.float32)
        return np.memmap(self.here / VALUES, dtype=np.float32, mode="r+", shape=(self.rows, sensors))

    def discard(self) -> None:
        self._fh.close()
        shutil.rmtree(self.here, ignore_errors=True)


def rows_file(entry: str | None) -> RowsFile | None:
    """Somewhere to write a long file's readings as they are read; None when the cache cannot
    be written (the rows are then gathered in memory)."""
    if entry is None:
        return None
    try:
        here = folder() / entry
        here.mkdir(parents=True, exist_ok=True, mode=0o700)
        return RowsFile(here)
    except OSError as exc:
        log.warning("rows cache not written (%s)", exc)
        return None


def save(entry: str | None, data, written: bool = False) -> None:
    """Keep ``data`` under ``entry`` (its readings already there when ``written``: a
    :class:`RowsFile`); drop the oldest entries beyond ``KEEP`` or ``KEEP_BYTES``."""
    if entry is None:
        return
    base = folder()
    here = base / entry
    try:
        here.mkdir(parents=True, exist_ok=True, mode=0o700)
        (here / "meta.json").unlink(missing_ok=True)
        if not written:
            np.ascontiguousarray(data.values, dtype=np.float32).tofile(here / VALUES)
        saved, names = [], list(PUMP_STATUSES)
        for name in _ARRAYS:
            array = getattr(data, name)
            if array is not None:
                np.save(here / f"{name}.npy", _codes(array, names) if name == "status" else array, allow_pickle=False)
                saved.append(name)
        fields = {k: getattr(data, k) for k in data.__dataclass_fields__ if k not in (*_ARRAYS, "values", "path")}
        meta = {"format": FORMAT, "file": str(data.path), "shape": list(data.values.shape), "arrays": saved, "fields": fields}
        meta["status_names"] = names
        (here / "meta.json").write_text(json.dumps(meta), encoding="utf-8")  # last: the entry is complete
    except OSError as exc:
        log.warning("rows cache not written (%s)", exc)
        shutil.rmtree(here, ignore_errors=True)
        return
    _trim(base)


def _codes(status: np.ndarray, names: list[str]) -> np.ndarray:
    """The pump statuses as one byte a row: the index of each in ``names``."""
    codes = np.full(len(status), 255, dtype=np.uint8)
    for i, name in enumerate(names):
        codes[status == name] = i
    if (codes == 255).any():
        raise OSError("a status the cache has no code for")
    return codes


def _trim(base: Path) -> None:
    entries = sorted((p for p in base.iterdir() if p.is_dir()), key=_age, reverse=True)
    held = 0
    for i, entry in enumerate(entries):
        held += _size(entry)
        if i >= KEEP or (i > 0 and held > KEEP_BYTES):
            shutil.rmtree(entry, ignore_errors=True)


def _size(entry: Path) -> int:
    try:
        return sum(f.stat().st_size for f in entry.iterdir() if f.is_file())
    except OSError:
        return 0


def _age(entry: Path) -> float:
    try:
        return entry.stat().st_mtime
    except OSError:
        return 0.0
