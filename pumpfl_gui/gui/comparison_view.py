"""What federating gave this facility: alone vs federated on its own file, and the model kept (gui).

Filled from the ``comparison.json`` a run leaves in the facility's folder (fl/alone.py); the
words and rows are the same as ``pumpfl client`` prints.
"""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QAbstractScrollArea,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core.wording import counted
from ..fl.alone import ALONE, FEDERATED, comparison_rows, kept_sentence
from .widgets import row

WAITING = (
    "After the run: your rows trained alone, in the same rounds as the federation, "
    "and both models scored on your file side by side."
)

HEADERS = ("", "Trained alone", "Federated")


class ComparisonView(QWidget):
    sig_open = Signal(object)  # the Path of the model to open in Monitor

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.comparison: dict | None = None
        self.note = QLabel(WAITING)
        self.note.setWordWrap(True)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(list(HEADERS))
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setSizeAdjustPolicy(QAbstractScrollArea.SizeAdjustPolicy.AdjustToContents)  # no empty grey below
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.kept = QLabel()
        self.kept.setWordWrap(True)
        self.kept.setTextFormat(Qt.TextFormat.RichText)
        self.open = QPushButton("Open the kept model in &Monitor")
        self.open.setEnabled(False)
        self.open.clicked.connect(lambda: self.sig_open.emit(Path(self.comparison["kept_model"])))
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addWidget(self.table)
        layout.addWidget(self.kept)
        layout.addLayout(row(self.open, None))
        layout.addStretch(1)

    def clear(self, note: str = WAITING) -> None:
        self.comparison = None
        self.note.setText(note)
        self.table.setRowCount(0)
        self.kept.clear()
        self.open.setEnabled(False)

    def show_comparison(self, comparison: dict) -> None:
        self.comparison = comparison
        rounds = comparison.get("rounds")
        self.note.setText(
            f"Both models scored on {comparison.get('data_file', 'your file')}: your rows trained alone"
            + (f" for {counted(rounds, 'round')}" if rounds else "")
            + ", and the federation's model made yours."
        )
        lines = comparison_rows(comparison)
        self.table.setRowCount(len(lines))
        keep_col = 1 if comparison["keep"] == ALONE else 2
        bold = QFont(self.font())
        bold.setBold(True)
        for r, cells in enumerate(lines):
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if c == keep_col:
                    item.setFont(bold)
                self.table.setItem(r, c, item)
        labels = list(HEADERS)
        labels[keep_col] += " ✓ kept"
        self.table.setHorizontalHeaderLabels(labels)
        models = comparison.get("models", {})
        where = " · ".join(f"{name}: {html.escape(models[name])}" for name in (FEDERATED, ALONE) if name in models)
        self.kept.setText(f"<b>{html.escape(kept_sentence(comparison))}</b><br><small>Saved models — {where}</small>")
        self.open.setEnabled(bool(comparison.get("kept_model")))
