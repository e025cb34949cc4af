"""Entry point of the frozen app (PyInstaller): the same ``main`` as ``pumpfl-gui``."""

import multiprocessing
import sys

from pumpfl_gui.gui.app import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # a frozen child process must not start another app
    sys.exit(main())
