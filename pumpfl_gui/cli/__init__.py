"""``pumpfl``: the headless commands (see ../shared/DESIGN.md, "Command-line contract") (cli layer).

One module per command family, each with its parser beside its commands: ``data``, ``train``
(train, score), ``server``, ``client`` (client, forget), ``demo``, ``bench``; ``federation``
holds what server, client and demo share, ``common`` what all share, ``main`` assembles them.
The cli sits beside gui: it may import bench, fl and core, never Qt.
"""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
