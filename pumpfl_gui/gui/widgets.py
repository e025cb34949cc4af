"""Small reusable widgets: a searchable log, a list of check results, a confirmation (gui layer)."""

from __future__ import annotations

import time

from PySide6.QtCore import QRect, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QGuiApplication, QTextCursor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QStyledItemDelegate,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .theme import status_colour

MAX_LOG_LINES = 5000


class LogView(QWidget):
    """Time-stamped lines with a filter box; keeps the last few thousand lines."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._lines: list[str] = []
        self.search = QLineEdit(placeholderText="Search the log…")
        self.search.setClearButtonEnabled(True)
        self.text = QPlainTextEdit(readOnly=True)
        self.text.setMaximumBlockCount(MAX_LOG_LINES)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.search)
        layout.addWidget(self.text)
        self.search.textChanged.connect(self._refilter)

    def add(self, line: str) -> None:
        stamped = f"{time.strftime('%H:%M:%S')}  {line}"
        self._lines.append(stamped)
        del self._lines[:-MAX_LOG_LINES]
        needle = self.search.text().strip().lower()
        if not needle or needle in stamped.lower():
            self.text.appendPlainText(stamped)
            self.text.moveCursor(QTextCursor.MoveOperation.End)

    def lines(self) -> list[str]:
        return list(self._lines)

    def _refilter(self, needle: str) -> None:
        needle = needle.strip().lower()
        shown = [line for line in self._lines if needle in line.lower()] if needle else self._lines
        self.text.setPlainText("\n".join(shown))


STATUS_MARKS = {"ok": "✔", "warning": "!", "failed": "✘", "skipped": "–", "running": "…"}


class _WrappingRows(QStyledItemDelegate):
    """Row heights that fit wrapped text: Qt sizes rows for at most two lines of a wrapped cell
    and elides the rest, which cut the "What to do" advice off mid-sentence."""

    def sizeHint(self, option, index):  # noqa: N802 (Qt's name)
        hint = super().sizeHint(option, index)
        view = self.parent()
        width = max(40, view.columnWidth(index.column()) - 10)
        text = str(index.data() or "")
        needed = option.fontMetrics.boundingRect(QRect(0, 0, width, 1_000_000), Qt.TextFlag.TextWordWrap, text)
        return QSize(hint.width(), max(hint.height(), needed.height() + 6))


class CheckList(QTreeWidget):
    """One row per connection-test step: a coloured mark, the step, what was seen, the fix."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setColumnCount(3)
        self.setHeaderLabels(["", "Step", "Result"])
        self.setRootIsDecorated(False)
        self.setWordWrap(True)
        self.setColumnWidth(0, 28)
        self.setColumnWidth(1, 260)
        self.setUniformRowHeights(False)
        self.setAlternatingRowColors(True)
        self.setItemDelegate(_WrappingRows(self))
        self.header().sectionResized.connect(lambda *_: self.scheduleDelayedItemsLayout())

    def add_result(self, status: str, step: str, detail: str, fix: str = "") -> QTreeWidgetItem:
        # Advice that asks nothing of the reader ("Nothing to do: ...") is not headed "What to do".
        heading = "" if fix.startswith("Nothing to do") else "What to do: "
        text = detail + (f"\n{heading}{fix}" if fix else "")
        item = QTreeWidgetItem(["", step, text])
        item.setText(0, STATUS_MARKS.get(status, "?"))
        colour = QColor(status_colour(status, self))
        item.setForeground(0, colour)
        item.setForeground(1, colour)
        item.setData(0, Qt.ItemDataRole.UserRole, status)
        item.setToolTip(2, text)
        self.addTopLevelItem(item)
        return item

    def statuses(self) -> list[str]:
        return [self.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole) for i in range(self.topLevelItemCount())]


def row(*widgets) -> QHBoxLayout:
    layout = QHBoxLayout()
    for w in widgets:
        if w is None:
            layout.addStretch(1)
        else:
            layout.addWidget(w)
    return layout


def page_layout(
    page: QWidget, controls: QWidget, view: QWidget, controls_width: int = 300, actions: QWidget | None = None
) -> None:
    """Controls on the left (at least ``controls_width`` wide), the run on the right.

    The controls scroll and the halves split, so a page fits small or half screens too;
    ``actions`` (the page's main buttons) stay under the controls, never scrolled away.
    """
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setWidget(controls)
    scroll.setMinimumWidth(controls_width)
    left: QWidget = scroll
    if actions is not None:
        left = QWidget()
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(scroll, 1)
        column.addWidget(actions)
    split = QSplitter(Qt.Orientation.Horizontal)
    split.addWidget(left)
    split.addWidget(view)
    page.controls_pane = left  # a page shown inside another (the demo's) may hide its controls
    split.setStretchFactor(1, 1)
    layout = QHBoxLayout(page)
    layout.addWidget(split)


def confirm(parent: QWidget, title: str, text: str, action: str) -> bool:
    """Ask before doing something that cannot be undone; True only when ``action`` is clicked."""
    box = QMessageBox(QMessageBox.Icon.Question, title, text, parent=parent)
    yes = box.addButton(action, QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    box.exec()
    return box.clickedButton() is yes


def copied(button: QPushButton, text: str) -> None:
    """Put ``text`` on the clipboard and say so on ``button`` itself for two seconds."""
    QGuiApplication.clipboard().setText(text)
    if not button.property("label"):
        button.setProperty("label", button.text())
    button.setText("Copied ✓")
    QTimer.singleShot(2000, button, lambda: button.setText(button.property("label")))
