"""The federation: PumpFL's protocol, its runners and its security (no Qt). Imports core only;
Flower is met in `flower/` alone."""

from ..core.ast_lock import serialise_ast_parsing

# Servers and facilities parse numpy headers in many threads at once (core/runtime.py says why).
serialise_ast_parsing()
