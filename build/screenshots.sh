#!/usr/bin/env bash
# Screenshots of every page in a real X11 window (Xvfb + Openbox, Qt's xcb platform) at
# 1366x768 and 1920x1080, light and dark, into docs/screenshots/ (or $1), with a size report
# per pass ({size}-{theme}.json). One Python process per pass: build/screenshots.py.
#
#   bash build/screenshots.sh [OUT_DIR]
#
# Needs (Debian/Ubuntu, as root):
#   apt-get install -y xvfb openbox x11-utils imagemagick libxcb-cursor0 libxkbcommon-x11-0 \
#     libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-xinerama0 \
#     libxcb-randr0 libxcb-shape0 libegl1 libgl1 libfontconfig1 libdbus-1-3
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/screenshots}"
python="${PYTHON:-.venv/bin/python}"
for tool in Xvfb openbox xprop import convert; do
    command -v "$tool" >/dev/null || { echo "missing $tool: see the apt-get line at the top of $0" >&2; exit 2; }
done
data="$(mktemp -d -t pumpfl-shots-data-XXXXXX)"  # the default data, made once for all passes
trap 'rm -rf "$data"' EXIT
status=0
for size in 1366x768 1920x1080; do
    for theme in light dark; do
        echo "== $size $theme"
        "$python" build/screenshots.py --size "$size" --theme "$theme" --out "$out" --data-dir "$data" || status=1
    done
done
exit $status
