"""``python -m pumpfl_gui`` runs the command line (the desktop app takes over in a later issue)."""

import sys

from .cli import main

sys.exit(main())
