"""Shared test set-up.

- Every test run gets its own user data folder: server identities, pinned fingerprints and
  default run folders live there (platformdirs honours XDG_DATA_HOME), and tests — and the
  processes they start — must not touch the real one.
- No test may leave a thread behind (a runner that does not stop is a bug users would feel).
"""

import os
import threading
import time

import pytest


@pytest.fixture(scope="session", autouse=True)
def private_user_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("user-data")
    old = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(folder)
    yield folder
    if old is None:
        os.environ.pop("XDG_DATA_HOME", None)
    else:
        os.environ["XDG_DATA_HOME"] = old


@pytest.fixture(autouse=True)
def no_threads_left_behind():
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 10
    while (extra := [t for t in threading.enumerate() if t not in before and t.is_alive()]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not extra, f"test left threads running: {[t.name for t in extra]}"
