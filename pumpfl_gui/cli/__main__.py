"""``python -m pumpfl_gui.cli``: the ``pumpfl`` command."""

import sys

from .main import main

if __name__ == "__main__":
    sys.exit(main())
