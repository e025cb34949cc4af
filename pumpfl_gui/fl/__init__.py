"""Flower runners, strategies and security (no Qt). Imports core only."""

from ..core.runtime import serialise_ast_parsing

# Servers and facilities parse numpy headers in many threads at once (core/runtime.py says why).
serialise_ast_parsing()
