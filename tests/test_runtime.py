"""Process-wide runtime settings the federation relies on (core/runtime.py)."""

import ast
import sys
import threading

import pumpfl_gui.fl  # noqa: F401  (installs the serialised parser on the Pythons that need it)


def test_the_federation_layer_serialises_syntax_trees_on_pythons_that_race():
    # CPython before 3.11.8 (gh-106905) fails when two threads build syntax trees at once;
    # numpy parses every parameter array's header that way in each facility's thread.
    assert getattr(ast.parse, "pumpfl_serialised", False) == (sys.version_info < (3, 11, 8))


def test_syntax_trees_built_from_many_threads_stay_right():
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }"
    results, errors = [], []

    def work():
        try:
            for _ in range(200):
                results.append(ast.literal_eval(header)["shape"])
        except Exception as exc:  # noqa: BLE001 - any failure fails the test below
            errors.append(repr(exc))

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and results == [(3, 4)] * 1200
