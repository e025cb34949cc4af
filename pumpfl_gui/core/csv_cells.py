"""Cells that are safe to open in a spreadsheet (core layer; stdlib only).

Facility names come from peers. A cell starting with ``=``, ``+``, ``-``, ``@`` or a control
character is taken as a formula by Excel and LibreOffice ("CSV injection", OWASP); such text
cells get a leading apostrophe, which spreadsheets show as plain text. Numbers pass unchanged.
"""

from __future__ import annotations

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def safe_cell(value):
    """``value`` for a CSV cell: text that a spreadsheet could run is made inert."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value
