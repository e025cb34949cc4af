#!/usr/bin/env bash
# Build the one-folder app: dist/PumpFL/PumpFL (Linux), dist/PumpFL.app (macOS).
# Run from anywhere after the README's install command; PyInstaller's work folder is build/work.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export QT_QPA_PLATFORM=${QT_QPA_PLATFORM:-offscreen}
"$PY" build/make_icons.py
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN --distpath dist --workpath build/work build/pumpfl.spec
echo "built: dist/PumpFL/ ($(du -sh dist/PumpFL | cut -f1)); try: dist/PumpFL/PumpFL --self-test"
