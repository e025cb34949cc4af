"""Shared test set-up.

- Every test run (each xdist worker too) gets its own user data folder: server identities,
  pinned fingerprints and default run folders live there (platformdirs honours XDG_DATA_HOME),
  and tests — and the processes they start — must not touch the real one. The app's settings
  (QSettings, under XDG_CONFIG_HOME), its log file (XDG_STATE_HOME) and caches likewise.
- Qt runs offscreen on a full-HD screen.
- No test may leave a thread behind (a runner that does not stop is a bug users would feel).
- SKAB-format files are made here (``skab_dir``), never read from ``../shared``: a fresh clone
  has no such folder.
- Tests fall into lanes (markers declared in pyproject.toml) by what they use, so a new test
  lands in its lane without being told; see ``pytest_collection_modifyitems``. Tests that took
  over ``SLOW_S`` without a ``slow`` mark are listed at the end of the run.
"""

import dis
import functools
import gc
import inspect
import os
import signal
import sys
import threading
import time
import types
from pathlib import Path

import pytest

# A run started in the background by a shell (`make test &`) inherits SIGINT ignored, and so
# would every `pumpfl` process the tests start and then interrupt (Ctrl+C) to end: undo that.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Qt widgets are real but drawn offscreen, on a 1920x1080 screen like a plant's desktop
# (Qt's default offscreen screen is 800x800, which clamps restored window sizes).
if os.environ.get("QT_QPA_PLATFORM", "offscreen") == "offscreen":
    os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={Path(__file__).with_name('offscreen-screen.json')}"


@pytest.fixture(scope="session", autouse=True)
def private_user_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("user-data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_DATA_HOME", str(folder))
        mp.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("user-config")))
        mp.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("user-state")))  # the app's log file
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("user-cache")))
        yield folder


@pytest.fixture(scope="module")
def plant(tmp_path_factory):
    """The default pump data (five facilities' client_*.csv), made for the module; a module
    that needs other data defines its own ``plant``."""
    from pumpfl_gui.core.simulator import generate

    folder = tmp_path_factory.mktemp("plant")
    generate(folder)
    return folder


@pytest.fixture(scope="session")
def skab_dir(tmp_path_factory):
    """SKAB's layout, made here: valve1/0.csv, valve1/1.csv, valve2/0.csv (1,100 rows each, the
    valve closed in rows 600-899) and anomaly-free/anomaly-free.csv (2,000 rows)."""
    from pumpfl_gui.core.skab_simulator import write_skab_folder

    return write_skab_folder(tmp_path_factory.mktemp("skab") / "skab")


# Cycles are collected on the main thread only, after each test (the app does the same with a
# timer, gui/collector.py): collected in a runner's thread, a Qt window an earlier test left in a
# cycle is destroyed there while the main thread destroys Qt objects too, and both wait forever.
gc.disable()


@pytest.fixture(autouse=True)
def collect_on_the_main_thread(request):
    yield
    if {"qtbot", "qapp"} & set(request.fixturenames):
        gc.collect()  # whatever Qt objects the test left in cycles go now, here
    else:
        from pumpfl_gui.gui.collector import collect_due

        collect_due()  # as automatic collection would have


@pytest.fixture(autouse=True)
def no_threads_left_behind():
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 10

    # Qt's own threads show up as _DummyThread entries that never leave the list; QThreads are
    # checked by the GUI tests themselves (QThread.wait).
    def leftovers():
        return [
            t for t in threading.enumerate() if t not in before and t.is_alive() and not isinstance(t, threading._DummyThread)
        ]

    while (extra := leftovers()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not extra, f"test left threads running: {[t.name for t in extra]}"


# --- Lanes -----------------------------------------------------------------------------------
# gui:        the test asks for pytest-qt's qtbot (or qapp).
# federation: the test, a helper or fixture of it in tests/, reaches one of FEDERATION_DOORS;
#             a test that federates only through a `pumpfl` process says so with a mark.
# build:      it names build/build.sh or build/pumpfl.spec, or reaches PyInstaller.
# slow:       every gui, federation and build test, every test that starts the app in a process
#             (`python -m pumpfl_gui...`: a fresh interpreter imports torch and Flower, 2-3 s)
#             or reaches one of HEAVY_CALLS, and any test marked slow by hand (a long
#             computation, a module fixture that trains).
# `pytest -m "not slow"` is the fast lane; plain `pytest` still runs everything.

SLOW_S = 2.0  # a test over this (setup + call + teardown) belongs in the slow lane
LANES = ("federation", "gui", "build")  # each is slow as well
GUI_FIXTURES = {"qtbot", "qapp"}
# What starts a real server or facility: matched by name inside the package (modules move),
# and tests/loopback.py's Run.
FEDERATION_DOORS = {"ServerRunner", "ClientRunner", "LoopbackFederation", "run_self_test"}
PROCESS_STARTERS = {("subprocess", name) for name in ("Popen", "run", "call", "check_call", "check_output")}
APP = "pumpfl_gui"  # a string constant starting so, beside a process starter: `python -m pumpfl_gui...`
BUILD_FILES = ("build.sh", "build.ps1", "pumpfl.spec")  # a string constant ending so: the bundle
# Work known to take seconds, wherever a test or its fixture calls it.
HEAVY_CALLS = {
    ("pumpfl_gui.core.simulator", "generate"),  # the default data: 5 files, 73 MB, about 3 s
    ("pumpfl_gui.core.simulator", "ensure_default_data"),  # the same, when it is not there yet
}
TESTS_DIR = Path(__file__).parent


def _names_in(code: types.CodeType) -> set[str]:
    """Global and attribute names a code object uses, nested functions and lambdas included."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names_in(const)
    return names


def _telling_strings(code: types.CodeType) -> set[tuple[str, str]]:
    """("-m", text) for each string constant naming one of the app's modules, ("build", text)
    for each naming a build file."""
    found = set()
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found |= _telling_strings(const)
        elif isinstance(const, str) and const.startswith(APP):
            found.add(("-m", const))
        elif isinstance(const, str) and const.endswith(BUILD_FILES):
            found.add(("build", const))
    return found


def _imported_inside(code: types.CodeType) -> set[tuple[str, str]]:
    """(module, name) of each ``from module import name`` inside a function body."""
    found, module = set(), None
    has_import = dis.opmap["IMPORT_FROM"] in code.co_code[::2]  # opcodes sit at even offsets
    for instruction in dis.get_instructions(code) if has_import else ():
        if instruction.opname == "IMPORT_NAME":
            module = instruction.argval
        elif instruction.opname == "IMPORT_FROM" and module:
            found.add((module, instruction.argval))
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found |= _imported_inside(const)
    return found


@functools.cache
def _module_in_tests(module_name: str) -> bool:
    file = getattr(sys.modules.get(module_name), "__file__", None)
    return file is not None and Path(file).resolve().is_relative_to(TESTS_DIR.resolve())


def _defined_in_tests(obj) -> bool:
    module = getattr(obj, "__module__", None)
    return isinstance(module, str) and _module_in_tests(module)


_reached_by: dict[types.CodeType, frozenset] = {}


def _reached(func) -> frozenset[tuple[str, str]]:
    """(module, name) of every object ``func`` reaches through its globals, following the
    helpers, classes and modules defined in tests/ (subprocess.Popen appears as both the
    module and the attribute name, so a module's used attributes count too)."""
    func = inspect.unwrap(func)
    code = getattr(func, "__code__", None)
    if code is None:
        return frozenset()
    if code in _reached_by:  # done, or in progress further up (a cycle adds nothing new)
        return _reached_by[code]
    _reached_by[code] = frozenset()
    names = _names_in(code)
    found = _imported_inside(code) | _telling_strings(code)
    for name in names:
        obj = func.__globals__.get(name)
        if obj is None:
            continue
        if isinstance(obj, types.ModuleType):
            found |= {(obj.__name__, attr) for attr in names}
            continue
        for klass in obj.__mro__ if isinstance(obj, type) else (obj,):
            module, qualname = getattr(klass, "__module__", None), getattr(klass, "__qualname__", None)
            if isinstance(module, str) and isinstance(qualname, str):  # classes and functions
                found.add((module, qualname))
        if _defined_in_tests(obj):
            members = vars(obj).values() if isinstance(obj, type) else [obj]
            for member in members:
                if isinstance(member, (types.FunctionType, classmethod, staticmethod, property)):
                    found |= _reached(getattr(member, "__func__", getattr(member, "fget", member)))
    _reached_by[code] = frozenset(found)
    return _reached_by[code]


def _what_it_uses(item) -> set[tuple[str, str]]:
    """What a test reaches from its own body and from the fixtures it asks for (ours only)."""
    used = set(_reached(item.obj)) if isinstance(item, pytest.Function) else set()
    fixture_info = getattr(item, "_fixtureinfo", None)  # pytest keeps it private; every test has one
    for defs in fixture_info.name2fixturedefs.values() if fixture_info else ():
        for fixture in defs:
            if _defined_in_tests(fixture.func):
                used |= _reached(fixture.func)
    return used


def pytest_collection_modifyitems(config, items):
    for item in items:
        used = _what_it_uses(item)
        if GUI_FIXTURES & set(item.fixturenames):
            item.add_marker("gui")
        federates = any(name in FEDERATION_DOORS and module.startswith("pumpfl_gui.") for module, name in used)
        if (federates or ("loopback", "Run") in used) and not item.get_closest_marker("federation"):
            item.add_marker("federation")
        bundles = any(kind == "build" or kind.startswith("PyInstaller") for kind, _ in used)
        if bundles and not item.get_closest_marker("build"):
            item.add_marker("build")
        runs_the_app = bool(used & PROCESS_STARTERS) and any(kind == "-m" for kind, _ in used)
        costly = runs_the_app or bool(used & HEAVY_CALLS)
        if (costly or any(item.get_closest_marker(lane) for lane in LANES)) and not item.get_closest_marker("slow"):
            item.add_marker("slow")


_seconds: dict[str, float] = {}
_slow_unmarked: list[tuple[float, str]] = []


def pytest_runtest_logreport(report):
    # Runs in the controller under xdist too: reports carry the item's marker names as keywords.
    _seconds[report.nodeid] = _seconds.get(report.nodeid, 0.0) + report.duration
    if report.when == "teardown":
        seconds = _seconds.pop(report.nodeid)
        if seconds > SLOW_S and "slow" not in report.keywords:
            _slow_unmarked.append((seconds, report.nodeid))


def pytest_terminal_summary(terminalreporter):
    if _slow_unmarked:
        terminalreporter.write_sep("=", f"over {SLOW_S:g} s without a slow mark (add @pytest.mark.slow, or a lane)")
        for seconds, nodeid in sorted(_slow_unmarked, reverse=True):
            terminalreporter.write_line(f"{seconds:6.1f} s  {nodeid}")
