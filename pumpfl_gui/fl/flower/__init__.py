"""The one place PumpFL meets Flower (an import-linter contract keeps ``flwr`` out of every
other module; ``tests/test_flower_seam.py`` lists the Flower names used here and fails when an
upgrade removes one).

- ``wire.py``: the gRPC transport — PumpFL's own Join servicer on Flower's bidirectional
  stream, and a facility's channel and stream;
- ``admission.py``: the client manager that admits a facility only after the join handshake;
- ``strategies.py``: Flower's strategies, chosen by the settings and wrapped with our checks;
- ``rounds.py``: the coordinator's side of a round (ask every facility, combine, evaluate);
- ``client_codec.py``: a facility's side — Flower's messages to and from ``fl/messages.py``.

Above it, ``fl/`` speaks PumpFL's own protocol (``protocol.py``, ``handshake.py``,
``messages.py``, the runners); moving to another Flower API should mean another adapter here.
"""

import importlib.metadata
import logging

DISTRIBUTION = "flwr"

# Flower logs every sampling step at INFO; PumpFL reports rounds through its own events.
logging.getLogger(DISTRIBUTION).setLevel(logging.WARNING)


def versions() -> dict[str, str]:
    """Flower's version, read from the package metadata (which a bundle must carry)."""
    return {DISTRIBUTION: importlib.metadata.version(DISTRIBUTION)}
