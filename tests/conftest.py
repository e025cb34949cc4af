"""Shared test set-up: every test run gets its own user data folder.

Server identities, pinned fingerprints and default run folders live in the user data folder
(platformdirs honours XDG_DATA_HOME); tests, and the processes they start, use a private one.
"""

import os

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
