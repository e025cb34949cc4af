"""The coordinator's page: network, settings, Start/Stop, facilities, loss curves, log (gui)."""

from __future__ import annotations

import csv
import html
import shutil
import time
from pathlib import Path

from PySide6.QtCore import QEvent, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QDoubleValidator, QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core.csv_cells import safe_cell
from ..core.errors import UserError
from ..fl.limits import BATCH
from ..fl.addresses import check_port_free, local_addresses
from ..fl.choices import DP_LINE, DP_STRATEGIES, INSECURE_SERVER_LINE, SHARED_SCALING_LINE, STRATEGIES, caution, describe
from ..fl.protocol import FederationSettings
from ..fl.server_runner import ServerOptions, ServerRunner
from .facility_invites import AddFacilityDialog, InviteList
from .plots import LossPlot
from .theme import coloured
from .widgets import LogView, page_layout, row
from .worker import RunnerWorker, start_worker

COLUMNS = ["Facility", "Samples", "State", "Train loss", "Eval loss", "Rounds"]
ADD_FACILITY_TIP = "Give one facility its own invite and join code, bound to its name"
ADVICE = (
    "Facilities on this network paste the invite as it is. Sites elsewhere cannot reach a LAN "
    "address: put this computer on a VPN such as Tailscale or ZeroTier (then use its 100.x or VPN "
    "address below), forward the port on your router, use a tunnel (e.g. ngrok tcp 8080) or run the "
    "server on a cloud machine — and enter that address under “Address in the invite”."
)


class Hint(QLabel):
    """A word-wrapped explanation in the muted colour, kept readable when the palette changes."""

    def __init__(self, text: str = "") -> None:
        super().__init__()
        self.setWordWrap(True)
        self.set_hint(text)

    def set_hint(self, text: str) -> None:
        self._hint = text
        self.setText(coloured(html.escape(text, quote=False), "skipped", self))

    def changeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self.set_hint(self._hint)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _align_labels(*forms: QFormLayout) -> None:
    """One label column for all the boxes, so their fields line up."""
    labels = [item.widget() for f in forms for i in range(f.rowCount())
              if (item := f.itemAt(i, QFormLayout.ItemRole.LabelRole)) is not None]
    width = max(label.sizeHint().width() for label in labels)
    for label in labels:
        label.setMinimumWidth(width)


def dp_refusal(strategy: str) -> str:
    """Why differential privacy is off with this strategy, in fl's own words ("" where it works)."""
    try:
        FederationSettings(strategy=strategy, min_clients=3, dp_noise_multiplier=1.0)
    except ValueError as exc:
        return _sentence(str(exc))
    return ""


class ServerPage(QWidget):
    sig_finished = Signal(object)
    """The run ended: the server's Finished or Failed event (or an exception)."""
    sig_event = Signal(object)
    """Every event of the running server, after the page has shown it."""

    def __init__(self, settings=None, parent=None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.worker: RunnerWorker | None = None
        self.thread = None
        self.out_dir: Path | None = None
        self.history: list = []
        self.rows: dict[str, int] = {}
        self.per_client_eval: dict[str, tuple[list, list]] = {}
        self._started_at = 0.0
        self.host = "0.0.0.0"
        self._run_over = False

        # -- network ------------------------------------------------------------------
        net = QGroupBox("Network")
        self.addresses = QLabel()
        self.addresses.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.addresses.setWordWrap(True)
        self.port = QSpinBox(minimum=1, maximum=65535, value=8080)
        self.port_state = QLabel()
        self.advertise = QLineEdit(placeholderText="automatic (this computer's LAN address)")
        self.invite = QLineEdit(readOnly=True, placeholderText="the invite appears here once the server runs")
        self.copy = QPushButton("&Copy invite")
        self.copy.setEnabled(False)
        advice = QLabel(ADVICE)
        advice.setWordWrap(True)
        form = QFormLayout(net)
        form.addRow("This computer", self.addresses)
        form.addRow("Port", row(self.port, self.port_state, None))
        form.addRow("Address in the invite", self.advertise)
        self.invite.setToolTip("The shared invite, for a quick trial: anyone who holds it may join, under any name. "
                               "Give each facility its own with Add facility…")
        form.addRow("Shared invite", row(self.invite, self.copy))
        self.add_facility = QPushButton("&Add facility…")
        self.add_facility.setToolTip(ADD_FACILITY_TIP)
        self.invite_list = InviteList(self._revoke_invite)
        self.facility_dialog: AddFacilityDialog | None = None
        form.addRow("Facility invites", row(self.add_facility, None))
        form.addRow(self.invite_list)
        form.addRow(advice)

        # -- settings -----------------------------------------------------------------
        box = QGroupBox("Training settings")
        self.rounds = QSpinBox(minimum=1, maximum=1000, value=10)
        self.min_clients = QSpinBox(minimum=1, maximum=100, value=2)
        self.epochs = QSpinBox(minimum=1, maximum=100, value=3)
        self.lr = QDoubleSpinBox(decimals=5, minimum=0.00001, maximum=1.0, singleStep=0.0005, value=0.001)
        self.batch = QSpinBox(minimum=BATCH[0], maximum=BATCH[1], value=256)
        self.timeout = QSpinBox(minimum=5, maximum=86400, value=600, suffix=" s")
        self.timeout.setToolTip("How long a round waits for each facility's answer. A facility that disconnects "
                                "or stops answering is out of the round within seconds anyway.")
        self.join_wait = QSpinBox(minimum=5, maximum=7 * 86400, value=3600, suffix=" s")
        self.join_wait.setToolTip("How long the run waits for the minimum of facilities: at the start, and paused "
                                  "whenever too few are left. Then it ends, and can be resumed.")
        self.insecure = QCheckBox("Insecure: no encryption, no join code (trusted networks only)")
        sform = QFormLayout(box)
        sform.addRow("Rounds", self.rounds)
        sform.addRow("Minimum facilities", self.min_clients)
        sform.addRow("Local epochs per round", self.epochs)
        sform.addRow("Learning rate", self.lr)
        sform.addRow("Batch size", self.batch)
        sform.addRow("Round timeout", self.timeout)
        sform.addRow("Wait for facilities", self.join_wait)
        sform.addRow(self.insecure)
        self.insecure_warning = QLabel()
        self.insecure_warning.setWordWrap(True)
        self.insecure_warning.hide()
        sform.addRow(self.insecure_warning)

        # -- strategy and privacy (fl/choices.py says what each choice does) -------------
        strategy_box = QGroupBox("How updates are combined")
        self.strategy = QComboBox()
        for s in STRATEGIES.values():
            self.strategy.addItem(s.title, s.name)
        self.strategy_line = Hint()
        defaults = FederationSettings()
        self.strategy_settings = {
            "proximal_mu": QDoubleSpinBox(decimals=4, minimum=0.0, maximum=10.0, singleStep=0.01, value=defaults.proximal_mu),
            "server_lr": QDoubleSpinBox(decimals=4, minimum=0.0001, maximum=1.0, singleStep=0.005, value=defaults.server_lr),
            "trim_fraction": QDoubleSpinBox(decimals=2, minimum=0.0, maximum=0.45, singleStep=0.05, value=defaults.trim_fraction),
        }
        self.shared_scaling = QCheckBox("Agree scaling and threshold across facilities")
        self.shared_scaling.setToolTip(_sentence(SHARED_SCALING_LINE))
        self.strategy_form = QFormLayout(strategy_box)
        self.strategy_form.addRow("Strategy", self.strategy)
        self.strategy_form.addRow(self.strategy_line)
        for s in STRATEGIES.values():
            if s.setting:
                self.strategy_form.addRow(_sentence(s.setting_label), self.strategy_settings[s.setting])
        self.strategy_form.addRow(self.shared_scaling)
        self.strategy_form.addRow(Hint(_sentence(SHARED_SCALING_LINE)))

        self.dp = QGroupBox("Differential privacy", checkable=True, checked=False)
        self.dp_noise = QDoubleSpinBox(decimals=2, minimum=0.01, maximum=100.0, singleStep=0.1, value=1.0)
        self.dp_clip = QDoubleSpinBox(decimals=3, minimum=0.001, maximum=1000.0, singleStep=0.1, value=defaults.dp_clipping_norm)
        self.dp_delta = QLineEdit(f"{defaults.dp_delta:g}")
        self.dp_delta.setValidator(QDoubleValidator(0.0, 1.0, 12))
        dform = QFormLayout(self.dp)
        dform.addRow("Noise multiplier", self.dp_noise)
        dform.addRow("Clipping norm", self.dp_clip)
        dform.addRow("δ (delta)", self.dp_delta)
        self.dp_line = Hint()  # what it does, or why it is off with the chosen strategy
        dform.addRow(self.dp_line)
        # What measurement says against the choices made (fl/choices.caution), in warning colour.
        self.caution = QLabel()
        self.caution.setWordWrap(True)
        self.caution.hide()
        _align_labels(form, sform, self.strategy_form, dform)

        # Disabled as one while the server runs; the boxes inside keep their own state.
        self.settings_area = QWidget()
        settings_layout = QVBoxLayout(self.settings_area)
        settings_layout.setContentsMargins(0, 0, 0, 0)
        for w in (box, strategy_box, self.dp, self.caution):
            settings_layout.addWidget(w)
        self.start = QPushButton("&Start server")
        self.start.setDefault(True)
        self.stop = QPushButton("S&top")
        self.stop.setEnabled(False)

        left = QVBoxLayout()
        left.addWidget(net)
        left.addWidget(self.settings_area)
        left.addLayout(row(self.start, self.stop, None))
        left.addStretch(1)
        left_w = QWidget()
        left_w.setLayout(left)
        left_w.setMaximumWidth(520)

        # -- run view -----------------------------------------------------------------
        self.status = QLabel("Not running.")
        self.status.setWordWrap(True)
        self.privacy = QLabel()
        self._run_delta = defaults.dp_delta  # the running federation's delta, for the epsilon line
        self.privacy.setToolTip(_sentence(DP_LINE))
        self.privacy.hide()
        self.progress = QProgressBar()
        self.progress.setFormat("round %v of %m")
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.loss_plot = LossPlot("Global model: loss per round")
        self.client_plot = LossPlot("Each facility: eval loss per round")
        self.log = LogView()
        self.save_model = QPushButton("Save global &model…")
        self.export = QPushButton("&Export history as CSV…")
        self.save_model.setEnabled(False)
        self.export.setEnabled(False)
        plots = QSplitter(Qt.Orientation.Horizontal)
        plots.addWidget(self.loss_plot)
        plots.addWidget(self.client_plot)
        right = QSplitter(Qt.Orientation.Vertical)
        top = QWidget()
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addWidget(self.status)
        tl.addWidget(self.privacy)
        tl.addWidget(self.progress)
        tl.addWidget(self.table)
        right.addWidget(top)
        right.addWidget(plots)
        right.addWidget(self.log)
        right.setSizes([220, 320, 160])
        rlayout = QVBoxLayout()
        rlayout.addWidget(right)
        rlayout.addLayout(row(self.save_model, self.export, None))
        right_w = QWidget()
        right_w.setLayout(rlayout)

        page_layout(self, left_w, right_w)

        self._port_timer = QTimer(self, singleShot=True, interval=300)
        self._port_timer.timeout.connect(self._check_port)
        self.port.valueChanged.connect(lambda _v: self._port_timer.start())
        self.copy.clicked.connect(self._copy_invite)
        self.add_facility.clicked.connect(self._add_facility)
        self.invite_list.sig_copied.connect(lambda name: self.log.add(f"{name}'s invite copied to the clipboard"))
        self.insecure.toggled.connect(self._insecure_changed)
        self.start.clicked.connect(self.start_server)
        self.stop.clicked.connect(self.stop_server)
        self.save_model.clicked.connect(self._save_model)
        self.export.clicked.connect(self._export_history)
        self.strategy.currentIndexChanged.connect(self._strategy_changed)
        for changed in (self.dp.toggled, self.shared_scaling.toggled, self.dp_noise.valueChanged, self.min_clients.valueChanged):
            changed.connect(self._show_caution)
        self._load_settings()
        self._strategy_changed()
        self.refresh_network()

    # -- settings ---------------------------------------------------------------------

    def _load_settings(self) -> None:
        if self.settings is None:
            return
        self.port.setValue(self.settings.get("server/port", 8080, int))
        self.rounds.setValue(self.settings.get("server/rounds", 10, int))
        self.min_clients.setValue(self.settings.get("server/min_clients", 2, int))
        self.advertise.setText(self.settings.get("server/advertise", "", str))
        self.strategy.setCurrentIndex(max(0, self.strategy.findData(self.settings.get("server/strategy", "fedavg", str))))
        for name, spin in self.strategy_settings.items():
            spin.setValue(self.settings.get(f"server/{name}", spin.value(), float))
        self.shared_scaling.setChecked(self.settings.get("server/shared_scaling", False, bool))
        self.dp.setChecked(self.settings.get("server/dp", False, bool))
        self.dp_noise.setValue(self.settings.get("server/dp_noise_multiplier", 1.0, float))
        self.dp_clip.setValue(self.settings.get("server/dp_clipping_norm", 1.0, float))
        self.dp_delta.setText(self.settings.get("server/dp_delta", "1e-05", str))

    def _save_settings(self) -> None:
        if self.settings is None:
            return
        self.settings.set("server/port", self.port.value())
        self.settings.set("server/rounds", self.rounds.value())
        self.settings.set("server/min_clients", self.min_clients.value())
        self.settings.set("server/advertise", self.advertise.text().strip())
        self.settings.set("server/strategy", self.strategy.currentData())
        for name, spin in self.strategy_settings.items():
            self.settings.set(f"server/{name}", spin.value())
        self.settings.set("server/shared_scaling", self.shared_scaling.isChecked())
        self.settings.set("server/dp", self.dp.isChecked())
        self.settings.set("server/dp_noise_multiplier", self.dp_noise.value())
        self.settings.set("server/dp_clipping_norm", self.dp_clip.value())
        self.settings.set("server/dp_delta", self.dp_delta.text().strip())

    def _strategy_changed(self) -> None:
        """Show the chosen strategy's line and its own setting; differential privacy only where it holds."""
        chosen = STRATEGIES[self.strategy.currentData()]
        self.strategy_line.set_hint(_sentence(chosen.line))
        for name, spin in self.strategy_settings.items():
            self.strategy_form.setRowVisible(spin, name == chosen.setting)
        refusal = dp_refusal(chosen.name)
        self.dp.setEnabled(not refusal)
        self.dp.setToolTip(refusal)
        self.dp_line.set_hint(refusal or _sentence(DP_LINE))
        self._show_caution()

    def _show_caution(self, *_args) -> None:
        try:
            words = caution(self.federation_settings())
        except ValueError:  # an unsound choice is refused when the server starts
            words = None
        self.caution.setText(coloured(html.escape(_sentence(words)), "warning", self) if words else "")
        self.caution.setVisible(bool(words))

    # -- network ----------------------------------------------------------------------

    def refresh_network(self) -> None:
        lines = [f"{a.ip}  —  {a.interface}, {a.kind}" for a in local_addresses() if a.kind != "loopback"]
        self.addresses.setText("\n".join(lines) or "only this computer (loopback); connect to a network first")
        self._check_port()

    def _check_port(self) -> bool:
        if self.worker is not None:
            return True
        try:
            check_port_free(self.port.value(), self.host)
        except UserError as exc:
            self.port_state.setText(coloured("in use", "failed", self))
            self.port_state.setToolTip(str(exc))
            return False
        self.port_state.setText(coloured("free", "ok", self))
        self.port_state.setToolTip("")
        return True

    def _copy_invite(self) -> None:
        QGuiApplication.clipboard().setText(self.invite.text())
        self.log.add("invite copied to the clipboard")

    def _insecure_changed(self, on: bool) -> None:
        self.insecure_warning.setText(coloured("⚠ " + html.escape(_sentence(INSECURE_SERVER_LINE)) + ".", "warning", self))
        self.insecure_warning.setVisible(on)
        self._update_add_facility()

    # -- one invite per facility --------------------------------------------------------

    def _listening_runner(self):
        """The running server once it listens and until its run ends (it can make invites), else None."""
        if self.worker is None or self._run_over or not self.invite.text():
            return None
        return self.worker.runner

    def _update_add_facility(self) -> None:
        """Before a start the names wait for it; while the server listens invites are made at once."""
        if self.insecure.isChecked():
            self.add_facility.setEnabled(False)
            self.add_facility.setToolTip("An insecure server has no join codes, so no invites per facility")
            return
        self.add_facility.setEnabled(self.worker is None or self._listening_runner() is not None)
        self.add_facility.setToolTip(ADD_FACILITY_TIP)

    def _add_facility(self) -> None:
        self.facility_dialog = AddFacilityDialog(self._make_invite, self.invite_list.has, self)
        self.facility_dialog.finished.connect(self._facility_dialog_closed)
        self.facility_dialog.open()

    def _make_invite(self, name: str) -> str | None:
        """The new invite's line, or None while the server has not started (it makes them at start)."""
        if self.worker is None:
            return None
        runner = self._listening_runner()
        if runner is None:
            raise ValueError("the server is not taking facilities now; add the facility once it listens, or before a start")
        return runner.add_invite(name).to_text()

    def _show_named_invites(self) -> None:
        runner = self._listening_runner()
        if runner is not None:
            self.invite_list.show_lines({name: invite.to_text() for name, invite in runner.invites().items()})
        self._update_add_facility()

    def _facility_dialog_closed(self, _result: int) -> None:
        dialog, self.facility_dialog = self.facility_dialog, None
        if dialog is None:
            return
        dialog.deleteLater()
        if dialog.facility:  # made, even if the dialog was then closed with Escape
            self.invite_list.add(dialog.facility, dialog.invite_text)
            when = "made" if dialog.invite_text else "to be made when the server starts"
            self.log.add(f"invite for {dialog.facility} {when}")

    def _revoke_invite(self, name: str) -> None:
        runner = self._listening_runner()
        if runner is not None:
            runner.revoke_invite(name)
            self.log.add(f"invite for {name} revoked")
        else:
            self.log.add(f"{name} removed from the facilities to invite")

    # -- run --------------------------------------------------------------------------

    def federation_settings(self) -> FederationSettings:
        strategy = self.strategy.currentData()
        dp_on = self.dp.isChecked() and strategy in DP_STRATEGIES
        try:
            delta = float(self.dp_delta.text()) if dp_on else 1e-5
        except ValueError:
            raise ValueError("δ must be a number between 0 and 1, such as 1e-5") from None
        return FederationSettings(
            rounds=self.rounds.value(),
            min_clients=self.min_clients.value(),
            local_epochs=self.epochs.value(),
            lr=self.lr.value(),
            batch_size=self.batch.value(),
            round_timeout=float(self.timeout.value()),
            join_timeout=float(self.join_wait.value()),
            strategy=strategy,
            **{name: spin.value() for name, spin in self.strategy_settings.items()},
            dp_noise_multiplier=self.dp_noise.value() if dp_on else None,
            dp_clipping_norm=self.dp_clip.value(),
            dp_delta=delta,
            shared_scaling=self.shared_scaling.isChecked(),
        )

    def start_server(self, out_dir: Path | None = None) -> bool:
        """Validate, then run the server in a worker thread. False (with a dialog) if invalid."""
        if self.worker is not None:
            return False
        try:
            settings = self.federation_settings()
            if self.advertise.text().strip():
                from ..fl.addresses import parse_server_address

                parse_server_address(self.advertise.text().strip(), default_port=self.port.value())
            check_port_free(self.port.value(), self.host)
            if self.insecure.isChecked() and self.invite_list.names():
                raise UserError("Invites per facility carry join codes, which an insecure server does not use; "
                                "untick Insecure, or revoke those invites")
        except (UserError, ValueError) as exc:
            QMessageBox.warning(self, "Cannot start the server", str(exc))
            return False
        self._save_settings()
        options = ServerOptions(
            host=self.host,
            port=self.port.value(),
            advertise=self.advertise.text().strip() or None,
            out_dir=out_dir if isinstance(out_dir, Path) else None,
            insecure=self.insecure.isChecked(),
            invites=tuple(self.invite_list.names()),
        )
        self._reset_view(settings)
        self.worker = RunnerWorker(lambda emit: ServerRunner(settings, options, emit))
        self.worker.sig_event.connect(self._on_event)
        self.worker.sig_done.connect(self._on_done)
        self.thread = start_worker(self.worker, self)
        self.start.setEnabled(False)
        self.stop.setEnabled(True)
        self._lock_settings(True)
        self._update_add_facility()
        self.status.setText("Starting…")
        self.log.add(describe(settings))
        return True

    def stop_server(self) -> None:
        if self.worker is not None:
            self.log.add("stopping …")
            self.status.setText("Stopping…")
            self.stop.setEnabled(False)
            self.worker.stop()

    def is_running(self) -> bool:
        return self.worker is not None

    def _lock_settings(self, locked: bool) -> None:
        """A run keeps the settings it started with; the port's free/in-use mark means nothing meanwhile."""
        for w in (self.port, self.advertise, self.settings_area):
            w.setEnabled(not locked)
        if locked:
            self.port_state.clear()

    def _reset_view(self, settings: FederationSettings) -> None:
        self.history.clear()
        self.rows.clear()
        self.per_client_eval.clear()
        self.table.setRowCount(0)
        self.loss_plot.clear()
        self.client_plot.clear()
        self.progress.setRange(0, settings.rounds)
        self.progress.setValue(0)
        self.invite.clear()
        self.copy.setEnabled(False)
        self._started_at = time.monotonic()
        self._run_over = False
        self._paused = False  # the run waits for facilities that left
        self._run_delta = settings.dp_delta
        self.privacy.setText("Privacy: no round yet")
        self.privacy.setVisible(settings.dp_noise_multiplier is not None)

    def _row_for(self, name: str) -> int:
        if name not in self.rows:
            r = self.table.rowCount()
            self.table.insertRow(r)
            self.rows[name] = r
            self.table.setItem(r, 0, QTableWidgetItem(name))
            for c in range(1, len(COLUMNS)):
                self.table.setItem(r, c, QTableWidgetItem(""))
        return self.rows[name]

    def _set(self, name: str, column: str, value) -> None:
        self.table.item(self._row_for(name), COLUMNS.index(column)).setText(str(value))

    @Slot(object)
    def _on_event(self, e) -> None:
        k = e.kind
        if k == "ServerListening":
            self.out_dir = Path(e.out_dir)
            self.invite.setText(e.invite)
            self.copy.setEnabled(True)
            self.status.setText(f"Waiting for {self.min_clients.value()} facilities. Give them the invite.")
            self.log.add(f"listening on {e.address}; results in {e.out_dir}")
            self._show_named_invites()
        elif k == "ClientJoined":
            self._set(e.name, "Samples", f"{e.samples:,}")
            self._set(e.name, "State", "connected")
            self.invite_list.mark(e.name, "joined")
            self.log.add(f"{e.name} joined")
        elif k == "ClientRefused":
            self._set(e.name, "State", "refused")
            self.table.item(self._row_for(e.name), 2).setToolTip(e.reason)
            self.log.add(f"refused {e.name}: {e.reason}")
        elif k == "ClientLeft":
            if not self._run_over:  # leaving after the last round is the normal goodbye
                self._set(e.name, "State", "dropped")
            self.invite_list.mark(e.name, "left")
            self.log.add(f"{e.name} left")
        elif k == "Finished":
            self._run_over = True
        elif k == "Waiting":
            self._waiting(e)
        elif k == "FacilityDropped":
            self._set(e.name, "State", f"out of round {e.round}")
            self.table.item(self._row_for(e.name), COLUMNS.index("State")).setToolTip(e.reason)
            self.log.add(f"round {e.round}: {e.name} is out of this round: {e.reason}")
        elif k == "RoundStarted":
            self._paused = False
            for name in e.participants:
                self._set(name, "State", "training")
            self.status.setText(f"Round {e.round} of {e.rounds}: facilities are training.")
            self.log.add(f"round {e.round}/{e.rounds} with {', '.join(e.participants)}")
        elif k == "RoundFinished":
            self._round_finished(e)
        elif k == "Failed":
            self._run_over = True
            self.log.add(f"failed: {e.message}")
        self.sig_event.emit(e)

    def _waiting(self, e) -> None:
        """The run waits for facilities: the countdown in the status line, the pause once in the log."""
        answer = f"each round then waits up to {self.timeout.value()} s for every answer"
        if self.history or self._paused:
            self.status.setText(f"Paused: {e.connected} of {e.needed} facilities connected; {e.detail} "
                                f"(then the run ends and can be resumed); {answer}.")
        else:
            self.status.setText(f"Waiting for facilities: {e.connected} of {e.needed} connected; {e.detail}; {answer}. "
                                "Give them the invite.")
        if self.history and not self._paused:
            self.log.add(f"paused: {e.connected} of {e.needed} facilities connected; {e.detail}")
            self.progress.setFormat("round %v of %m — paused")
            for name in self.rows:  # the round runs again once enough are back
                if self.table.item(self._row_for(name), COLUMNS.index("State")).text() == "training":
                    self._set(name, "State", "waiting")
        self._paused = bool(self.history)

    def _mark_cut_short(self, result) -> None:
        """A stopped run: no facility is still training, and no time is left to count."""
        for name in self.rows:
            if self.table.item(self._row_for(name), COLUMNS.index("State")).text() == "training":
                self._set(name, "State", "stopped")
        self.progress.setFormat(f"round %v of %m — stopped at round {result.rounds_completed}")

    def _round_finished(self, e) -> None:
        self.history.append(e)
        rounds = [h.round for h in self.history]
        self.loss_plot.set_series("train (weighted)", rounds, [h.train_loss for h in self.history])
        self.loss_plot.set_series("eval (weighted)", rounds, [h.eval_loss for h in self.history])
        for name, c in e.per_client.items():
            self._set(name, "State", "done")
            if "train_loss" in c:
                self._set(name, "Train loss", f"{c['train_loss']:.4f}")
            if "eval_loss" in c:
                self._set(name, "Eval loss", f"{c['eval_loss']:.4f}")
                xs, ys = self.per_client_eval.setdefault(name, ([], []))
                xs.append(e.round)
                ys.append(c["eval_loss"])
                self.client_plot.set_series(name, xs, ys)
            row_ = self._row_for(name)
            done = self.table.item(row_, COLUMNS.index("Rounds")).text()
            self._set(name, "Rounds", int(done or 0) + 1)
        if e.epsilon is not None:
            self.privacy.setText(f"Privacy: ε = {e.epsilon:.2f} after {e.round} round{'s' if e.round != 1 else ''} "
                                 f"(δ = {self._run_delta:g})")
            self.privacy.show()
        self.progress.setValue(e.round)
        elapsed = time.monotonic() - self._started_at
        per_round = sum(h.seconds for h in self.history) / len(self.history)
        left = per_round * (e.rounds - e.round)
        self.progress.setFormat(f"round %v of %m — about {left:.0f} s left" if e.round < e.rounds else "round %v of %m")
        self.log.add(
            f"round {e.round}/{e.rounds}: eval loss {e.eval_loss:.4f}, {e.seconds:.1f} s, "
            f"sent {e.bytes_sent / 1e6:.2f} MB, received {e.bytes_received / 1e6:.2f} MB ({elapsed:.0f} s so far)"
        )
        if e.agreed_threshold is not None:
            self.log.add(f"the facilities agreed an anomaly threshold of {e.agreed_threshold:.4g}")

    @Slot(object)
    def _on_done(self, result) -> None:
        self.worker = None
        self.thread = None
        self.start.setEnabled(True)
        self.stop.setEnabled(False)
        self.copy.setEnabled(False)
        self._lock_settings(False)
        self.invite_list.forget_lines()  # the run's codes died with it; the names wait for the next start
        self._update_add_facility()
        if isinstance(result, Exception):
            self.status.setText(f"Could not run: {result}")
            QMessageBox.warning(self, "Server stopped", str(result))
        elif result.kind == "Failed":
            self.status.setText(f"Stopped: {result.message}")
            QMessageBox.warning(self, "Server stopped", result.message)
        else:
            last = self.history[-1] if self.history else None
            summary = (f"Finished {result.rounds_completed} round(s)" if result.complete
                       else f"Stopped at round {result.rounds_completed} of {result.rounds_planned}")
            if not result.complete:
                self._mark_cut_short(result)
            if last is not None and self.history[0].eval_loss:
                summary += (f": eval loss {self.history[0].eval_loss:.4f} → {last.eval_loss:.4f} "
                            f"with {len(last.per_client)} facilities")
            self.status.setText(summary + f". Results in {result.out_dir}")
            self.log.add(summary)
        has_model = self.out_dir is not None and (self.out_dir / "global_model" / "model.json").exists()
        self.save_model.setEnabled(has_model)
        self.export.setEnabled(bool(self.history))
        self._check_port()
        self.sig_finished.emit(result)

    def _save_model(self) -> None:
        target = QFileDialog.getExistingDirectory(self, "Save the global model into folder")
        if target:
            dest = Path(target) / "pumpfl-global-model"
            shutil.copytree(self.out_dir / "global_model", dest, dirs_exist_ok=True)
            self.log.add(f"global model saved to {dest}")

    def _export_history(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export history", "pumpfl-history.csv", "CSV (*.csv)")
        if path:
            export_history_csv(Path(path), self.history)
            self.log.add(f"history exported to {path}")


def export_history_csv(path: Path, history: list) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["round", "facility", "samples", "train_loss", "eval_loss", "round_train_loss", "round_eval_loss", "bytes_sent",
                    "bytes_received", "seconds", "epsilon"])
        for h in history:
            for name, c in sorted(h.per_client.items()):
                w.writerow([h.round, safe_cell(name), c.get("samples", ""), c.get("train_loss", ""), c.get("eval_loss", ""),
                            h.train_loss, h.eval_loss, h.bytes_sent, h.bytes_received, h.seconds, "" if h.epsilon is None else h.epsilon])
