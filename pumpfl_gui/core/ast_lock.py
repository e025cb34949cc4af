"""A workaround for a CPython 3.11 bug that many threads in one process meet (core layer;
standard library only, so that importing the federation does not load torch)."""

from __future__ import annotations


def serialise_ast_parsing() -> None:
    """Let one thread at a time build a syntax tree, on the Pythons that need it.

    CPython 3.11 before 3.11.8 raises ``SystemError: AST constructor recursion depth mismatch``
    when two threads build syntax trees at once (CPython issue gh-106905). numpy parses every
    ``.npy`` header with ``ast.literal_eval``, and Flower's ``parameters_to_ndarrays`` loads each
    parameter array that way in the server's and every facility's thread, so a run with a
    server and facilities in one process (the app's "Try it", the benchmarks, the tests) could
    lose a facility to it. Idempotent.
    """
    import ast
    import sys
    import threading

    if sys.version_info >= (3, 11, 8) or getattr(ast.parse, "pumpfl_serialised", False):
        return
    lock = threading.Lock()
    parse = ast.parse

    def serialised_parse(*args, **kwargs):
        with lock:
            return parse(*args, **kwargs)

    serialised_parse.pumpfl_serialised = True
    ast.parse = serialised_parse
