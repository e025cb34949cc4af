"""``pumpfl-gui --self-test``: the check the frozen app runs in CI, here from the checkout."""

import os
import subprocess
import sys

import pytest

from pumpfl_gui.fl.privacy import epsilon

pytestmark = pytest.mark.federation  # each runs a federation in a `pumpfl-gui --self-test` process


def test_self_test_runs_a_secured_federation_and_says_so(tmp_path):
    env = dict(os.environ, PUMPFL_DATA_DIR=str(tmp_path / "data"), QT_QPA_PLATFORM="offscreen")
    done = subprocess.run(
        [sys.executable, "-m", "pumpfl_gui", "--self-test"], env=env, capture_output=True, text=True, timeout=300
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "TLS and join code: yes" in out
    assert "round 2/2: eval loss" in out
    assert f"privacy accountant: epsilon {epsilon([1.0] * 10, 1e-5):.2f} after 10 rounds" in out
    assert "self-test passed: 2 rounds with 2 facilities over TLS" in out
    assert "Qt: platform plugin, SVG icon and plotting present" in out
    assert (tmp_path / "data" / "client_1.csv").is_file()  # the default data was made on first use
    assert "Traceback" not in done.stderr


def test_self_test_fails_loudly_when_a_facility_cannot_train(tmp_path):
    # A default file that is not a sensor file: the federation cannot run, and the test says so.
    data = tmp_path / "data"
    data.mkdir()
    from pumpfl_gui.core.simulator import generate

    generate(data)
    (data / "client_1.csv").write_text("this is not,a sensor file\n1,2\n")
    env = dict(os.environ, PUMPFL_DATA_DIR=str(data), QT_QPA_PLATFORM="offscreen")
    done = subprocess.run(
        [sys.executable, "-m", "pumpfl_gui", "--self-test"], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "self-test failed" in done.stdout
    assert "Traceback" not in done.stderr


def test_without_a_screen_the_app_says_so_and_the_way_out_instead_of_qt_s_abort():
    from pumpfl_gui.gui.app import display_problem

    # Windows and macOS desktops always give the app a screen; a Linux session may have none.
    assert display_problem({}, "win32") is None and display_problem({"DISPLAY": ":0"}, "linux") is None
    assert display_problem({}, "linux").startswith("there is no display")
    if not sys.platform.startswith("linux"):
        return
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    done = subprocess.run([sys.executable, "-m", "pumpfl_gui"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: there is no display to open the window on")
    assert "pumpfl --help" in done.stderr and "Reinstalling" not in done.stderr and "Traceback" not in done.stderr
