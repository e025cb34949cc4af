"""``python -m pumpfl_gui`` opens the desktop app; the command line is ``pumpfl``
(or ``python -m pumpfl_gui.cli``)."""

import sys

from .gui.app import main

if __name__ == "__main__":  # a facility's process (fl/child_process.py) imports this module again
    sys.exit(main())
