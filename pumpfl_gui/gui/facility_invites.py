"""One invite per facility on the Server page: "Add facility…", the list with Copy and Revoke (gui).

The page owns the runner; this module only asks it through two callables: ``make_invite(name)``
returns the new invite's line, or None when the server has not started yet (the invite is
then made at start), and ``revoke(name)`` withdraws one. Both raise ValueError with a
sentence for a name they refuse.
"""

from __future__ import annotations

import html
from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core.errors import UserError
from ..fl.protocol import NAME_LIMIT, clean_name
from .theme import coloured
from .widgets import confirm, copied

PLANNED = "made at start"
READY = "ready to send"


class AddFacilityDialog(QDialog):
    """Asks for a facility's name, makes its invite, then shows the line with a Copy button."""

    def __init__(self, make_invite: Callable[[str], str | None], taken: Callable[[str], bool], parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add a facility")
        self._make_invite = make_invite
        self._taken = taken
        self.facility = ""  # the name added, once it is
        self.invite_text: str | None = None
        self.name = QLineEdit(placeholderText="e.g. Plant A")
        self.name.setMaxLength(NAME_LIMIT)
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.hide()
        self.invite = QLineEdit(readOnly=True)
        self.invite.hide()
        self.copy = QPushButton("&Copy invite")
        self.copy.hide()
        self.note = QLabel(
            "Each facility gets its own invite and join code; it joins under this name, once at a time, "
            "and you can revoke its invite without touching the others."
        )
        self.note.setWordWrap(True)
        self.buttons = QDialogButtonBox()
        self.create = self.buttons.addButton("C&reate invite", QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Facility name"))
        layout.addWidget(self.name)
        layout.addWidget(self.problem)
        layout.addWidget(self.note)
        copy_row = QHBoxLayout()
        copy_row.addWidget(self.invite, 1)
        copy_row.addWidget(self.copy)
        layout.addLayout(copy_row)
        layout.addWidget(self.buttons)
        self.create.clicked.connect(self._create)
        self.buttons.rejected.connect(self.reject)
        self.copy.clicked.connect(self._copy)
        self.resize(560, self.sizeHint().height())

    def _refuse(self, message: str) -> None:
        self.problem.setText(coloured(html.escape(message), "failed", self))
        self.problem.show()
        self.name.setFocus()

    def _create(self) -> None:
        name = clean_name(self.name.text())  # as the server will know it
        if not name:
            return self._refuse("Type the facility's name first.")
        if self._taken(name):
            return self._refuse(f"“{name}” already has an invite; choose another name, or revoke that invite first.")
        try:
            text = self._make_invite(name)
        except (ValueError, UserError) as exc:
            return self._refuse(str(exc))
        self.facility, self.invite_text = name, text
        if text is None:  # made at start: nothing to show yet
            self.accept()
            return
        self._show_invite(name, text)

    def _show_invite(self, name: str, text: str) -> None:
        self.problem.hide()
        self.name.setReadOnly(True)
        self.invite.setText(text)
        self.invite.setCursorPosition(0)
        self.invite.show()
        self.copy.show()
        self.note.setText(
            f"Send this line to {name} only, by a channel you trust: it admits one facility, under the name {name}."
        )
        self.buttons.clear()
        self.buttons.addButton(QDialogButtonBox.StandardButton.Close).clicked.connect(self.accept)
        self.copy.setFocus()

    def _copy(self) -> None:
        copied(self.copy, self.invite.text())


class InviteList(QWidget):
    """The named invites: facility, state, and Copy / Revoke for each."""

    sig_changed = Signal()
    """An invite was added or revoked."""
    sig_copied = Signal(str)
    """A facility's invite was copied to the clipboard (its name)."""

    def __init__(self, revoke: Callable[[str], None], parent=None) -> None:
        super().__init__(parent)
        self._revoke = revoke
        self._lines: dict[str, str | None] = {}  # name -> invite line (None until the server makes it)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Facility", "Invite", ""])
        self.table.setWordWrap(False)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        self.table.setTabKeyNavigation(False)  # Tab moves on to the buttons and the rest of the page
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        self._fit_height()

    # -- what the page asks --------------------------------------------------------------

    def names(self) -> list[str]:
        return list(self._lines)

    def has(self, name: str) -> bool:
        return name.casefold() in {n.casefold() for n in self._lines}

    def line(self, name: str) -> str | None:
        return self._lines.get(name)

    def state(self, name: str) -> str:
        return self.table.item(self._row(name), 1).text()

    def add(self, name: str, line: str | None) -> None:
        self._lines[name] = line
        r = self.table.rowCount()
        self.table.insertRow(r)
        item = QTableWidgetItem(name)
        item.setToolTip(name)
        self.table.setItem(r, 0, item)
        self.table.setItem(r, 1, QTableWidgetItem(READY if line else PLANNED))
        self.table.setCellWidget(r, 2, self._buttons(name))
        self._fit_height()
        self.sig_changed.emit()

    def show_lines(self, lines: dict[str, str]) -> None:
        """The server made the invites: keep each line, ready to copy."""
        for name, line in lines.items():
            if name not in self._lines:
                self.add(name, line)
            else:
                self._lines[name] = line
                self.mark(name, READY)
        self._enable_copies()

    def forget_lines(self) -> None:
        """The run is over: its invites are dead; the names stay for the next start."""
        for name in self._lines:
            self._lines[name] = None
            self.mark(name, PLANNED)
        self._enable_copies()

    def mark(self, name: str, state: str) -> None:
        if name in self._lines:
            self.table.item(self._row(name), 1).setText(state)

    def copy_button(self, name: str) -> QPushButton:
        return self.table.cellWidget(self._row(name), 2).findChild(QPushButton, "copy")

    def revoke_button(self, name: str) -> QPushButton:
        return self.table.cellWidget(self._row(name), 2).findChild(QPushButton, "revoke")

    # -- inside ---------------------------------------------------------------------------

    def _row(self, name: str) -> int:
        return list(self._lines).index(name)

    def _buttons(self, name: str) -> QWidget:
        holder = QWidget()
        copy = QPushButton("Copy", objectName="copy")
        copy.setEnabled(self._lines[name] is not None)
        copy.clicked.connect(lambda: self._copy(name))
        revoke = QPushButton("Revoke…", objectName="revoke")
        revoke.clicked.connect(lambda: self._ask_revoke(name))
        layout = QHBoxLayout(holder)
        layout.setContentsMargins(2, 0, 2, 0)
        layout.addWidget(copy)
        layout.addWidget(revoke)
        return holder

    def _enable_copies(self) -> None:
        for name, line in self._lines.items():
            self.copy_button(name).setEnabled(line is not None)

    def _copy(self, name: str) -> None:
        copied(self.copy_button(name), self._lines[name] or "")
        self.sig_copied.emit(name)

    def _ask_revoke(self, name: str) -> None:
        live = self._lines[name] is not None
        text = (
            f"Revoke {name}'s invite? Its join code stops working at once and {name} is disconnected "
            "if it is connected; the other facilities are not touched."
            if live
            else f"Remove {name} from the facilities to invite?"
        )
        if not confirm(self, "Revoke invite", text, "&Revoke"):
            return
        try:
            self._revoke(name)
        except (ValueError, UserError) as exc:
            QMessageBox.warning(self, "Cannot revoke", str(exc))
            return
        self.table.removeRow(self._row(name))
        del self._lines[name]
        self._fit_height()
        self.sig_changed.emit()

    def _fit_height(self) -> None:
        """As tall as its rows (up to five), so the page does not grow an empty box."""
        rows = min(max(self.table.rowCount(), 1), 5)
        height = self.table.horizontalHeader().sizeHint().height() + rows * self.table.verticalHeader().defaultSectionSize()
        self.table.setFixedHeight(height + 2 * self.table.frameWidth())
        self.setVisible(self.table.rowCount() > 0)
