"""Shared test set-up.

- Every test run gets its own user data folder: server identities, pinned fingerprints and
  default run folders live there (platformdirs honours XDG_DATA_HOME), and tests — and the
  processes they start — must not touch the real one.
- Qt runs offscreen on a full-HD screen.
- No test may leave a thread behind (a runner that does not stop is a bug users would feel).
- SKAB-format files are made here (``skab_dir``), never read from ``../shared``: a fresh clone
  has no such folder.
"""

import os
import threading
import time
from pathlib import Path

import pytest

# Qt widgets are real but drawn offscreen, on a 1920x1080 screen like a plant's desktop
# (Qt's default offscreen screen is 800x800, which clamps restored window sizes).
if os.environ.get("QT_QPA_PLATFORM", "offscreen") == "offscreen":
    os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={Path(__file__).with_name('offscreen-screen.json')}"


@pytest.fixture(scope="session", autouse=True)
def private_user_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("user-data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_DATA_HOME", str(folder))
        yield folder


@pytest.fixture(scope="session")
def skab_dir(tmp_path_factory):
    """SKAB's layout, made here: valve1/0.csv, valve1/1.csv, valve2/0.csv (1,100 rows each, the
    valve closed in rows 600-899) and anomaly-free/anomaly-free.csv (2,000 rows)."""
    from pumpfl_gui.core.skab_simulator import write_skab_folder

    return write_skab_folder(tmp_path_factory.mktemp("skab") / "skab")


@pytest.fixture(autouse=True)
def no_threads_left_behind():
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 10
    # Qt's own threads show up as _DummyThread entries that never leave the list; QThreads are
    # checked by the GUI tests themselves (QThread.wait).
    def leftovers():
        return [t for t in threading.enumerate() if t not in before and t.is_alive() and not isinstance(t, threading._DummyThread)]

    while (extra := leftovers()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not extra, f"test left threads running: {[t.name for t in extra]}"
