"""``python -m pumpfl_gui`` opens the desktop app; the command line is ``pumpfl``
(or ``python -m pumpfl_gui.cli``)."""

import sys

from .gui.app import main

sys.exit(main())
