"""``python -m pumpfl_gui.cli``: the ``pumpfl`` command."""

import sys

from .main import main

sys.exit(main())
