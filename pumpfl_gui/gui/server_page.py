"""The coordinator's page: network, settings, Start/Stop, facilities, loss curves, log (gui).

The page is built from its boxes (server_network_box.py, server_settings_boxes.py,
server_run_view.py), each making its widgets as attributes of the page; here they get their
behaviour: the port check, the invites, starting and stopping the run, and its events.
"""

from __future__ import annotations

import html
import time
from pathlib import Path

from PySide6.QtCore import QTimer, Signal, Slot
from PySide6.QtWidgets import QMessageBox, QPushButton, QTableWidgetItem, QVBoxLayout, QWidget

from ..core.errors import UserError
from ..core.wording import counted
from ..fl import narration
from ..fl.addresses import check_port_free, local_addresses
from ..fl.choices import INSECURE_SERVER_LINE, caution, describe
from ..fl.events import (
    ClientJoined,
    ClientLeft,
    ClientRefused,
    FacilityDropped,
    Failed,
    Finished,
    RoundFinished,
    RoundStarted,
    ServerListening,
    Waiting,
)
from ..fl.protocol import FederationSettings
from ..fl.run_check import InsecureWithInvites, check_server_run
from ..fl.server_runner import ServerOptions, ServerRunner
from . import server_settings_boxes as settings_boxes
from .facility_invites import AddFacilityDialog
from .server_network_box import ADD_FACILITY_TIP, network_box
from .server_run_view import COLUMNS, CURVES_SHOWN, export_history, run_view, save_global_model, show_spread
from .server_settings_boxes import align_labels, privacy_box, settings_area, strategy_box, training_box
from .theme import coloured
from .widgets import copied, page_layout, row
from .worker import RunnerWorker, start_worker

# Events logged in narration's words as they stand (Waiting and RoundFinished add their own).
LOGGED_AS_NARRATED = (ServerListening, ClientJoined, ClientRefused, ClientLeft, FacilityDropped, RoundStarted, Failed)


class ServerPage(QWidget):
    sig_finished = Signal(object)
    """The run ended: the server's Finished or Failed event (or an exception)."""
    sig_event = Signal(object)
    """Every event of the running server, after the page has shown it."""
    sig_invite = Signal(str)
    """The running server's invite, once it listens."""

    def __init__(self, settings=None, parent=None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.worker: RunnerWorker | None = None
        self.run_thread = None  # the running server's QThread (not QObject.thread(): this page's own)
        self.out_dir: Path | None = None
        self.history: list = []
        self.rows: dict[str, int] = {}
        self.per_client_eval: dict[str, tuple[list, list]] = {}
        self._started_at = 0.0
        self.host = "0.0.0.0"
        self._run_over = False
        self.facility_dialog: AddFacilityDialog | None = None
        self._run_delta = FederationSettings().dp_delta  # the running federation's delta, for the epsilon line

        network, training, strategy, privacy = network_box(self), training_box(self), strategy_box(self), privacy_box(self)
        align_labels(network, training, strategy, privacy)
        controls = self._controls_column(network, settings_area(self, training, strategy, privacy))
        actions = QWidget()  # Start and Stop under the scrolling settings, never out of sight
        actions.setLayout(row(self.start, self.stop, None))
        page_layout(self, controls, run_view(self), actions=actions)
        self._connect()
        self._load_settings()
        self._strategy_changed()
        self.refresh_network()

    def _controls_column(self, network: QWidget, settings: QWidget) -> QWidget:
        """The left column: the network box and the settings (Start and Stop go under it)."""
        self.start = QPushButton("&Start server")
        self.start.setDefault(True)
        self.stop = QPushButton("S&top")
        self.stop.setEnabled(False)
        left = QVBoxLayout()
        left.addWidget(network)
        left.addWidget(settings)
        left.addStretch(1)
        left_w = QWidget()
        left_w.setLayout(left)
        left_w.setMaximumWidth(520)
        return left_w

    def _connect(self) -> None:
        """Give the boxes' widgets their behaviour."""
        self._port_timer = QTimer(self, singleShot=True, interval=300)
        self._port_timer.timeout.connect(self._check_port)
        self.port.valueChanged.connect(lambda _v: self._port_timer.start())
        self.copy.clicked.connect(self._copy_invite)
        self.add_facility.clicked.connect(self._add_facility)
        self.invite_list.sig_copied.connect(lambda name: self.log.add(f"{name}'s invite copied to the clipboard"))
        self.insecure.toggled.connect(self._insecure_changed)
        self.start.clicked.connect(self.start_server)
        self.stop.clicked.connect(self.stop_server)
        self.save_model.clicked.connect(lambda: save_global_model(self))
        self.export.clicked.connect(lambda: export_history(self))
        self.strategy.currentIndexChanged.connect(self._strategy_changed)
        for changed in (self.dp.toggled, self.shared_scaling.toggled, self.dp_noise.valueChanged, self.min_clients.valueChanged):
            changed.connect(self._show_caution)

    # -- settings ---------------------------------------------------------------------

    def _load_settings(self) -> None:
        if self.settings is not None:
            settings_boxes.load_choices(self, self.settings)

    def _save_settings(self) -> None:
        if self.settings is not None:
            settings_boxes.save_choices(self, self.settings)

    def _strategy_changed(self) -> None:
        """Show the chosen strategy's line and its own setting; differential privacy only where
        it holds."""
        settings_boxes.show_strategy(self)
        self._show_caution()

    def _show_caution(self, *_args) -> None:
        try:
            words = caution(self.federation_settings())
        except ValueError:  # an unsound choice is refused when the server starts
            words = None
        self.caution.setText(coloured(html.escape(narration.capitalised(words)), "warning", self) if words else "")
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
        copied(self.copy, self.invite.text())
        self.log.add("invite copied to the clipboard")

    def _insecure_changed(self, on: bool) -> None:
        self.insecure_warning.setText(
            coloured("⚠ " + html.escape(narration.capitalised(INSECURE_SERVER_LINE)) + ".", "warning", self)
        )
        self.insecure_warning.setVisible(on)
        self._update_add_facility()

    # -- one invite per facility --------------------------------------------------------

    def _listening_runner(self):
        """The running server once it listens and until its run ends (it can make invites),
        else None."""
        if self.worker is None or self._run_over or not self.invite.text():
            return None
        return self.worker.runner

    def _update_add_facility(self) -> None:
        """Before a start the names wait for it; while the server listens invites are made
        at once."""
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
        """The new invite's line, or None while the server has not started (it makes them
        at start)."""
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
        """The settings boxes as one FederationSettings (ValueError for a δ that is no number)."""
        return settings_boxes.federation_settings(self)

    # -- what the demo page drives ------------------------------------------------------------

    def serve_this_computer_only(self) -> None:
        """Listen on loopback only (the demo: every facility is on this computer)."""
        self.host = "127.0.0.1"
        self.advertise.setPlaceholderText("127.0.0.1 (this computer only)")

    def configure(self, rounds: int, epochs: int, facilities: int, port: int) -> None:
        """The settings a run starts with, as if typed in."""
        self.rounds.setValue(rounds)
        self.epochs.setValue(epochs)
        self.min_clients.setValue(facilities)
        self.port.setValue(port)

    def start_server(self, out_dir: Path | None = None) -> bool:
        """Validate, then run the server in a worker thread. False (with a dialog) if invalid."""
        if self.worker is not None:
            return False
        try:
            settings = self.federation_settings()
            invites = check_server_run(
                self.port.value(),
                self.host,
                self.advertise.text().strip() or None,
                self.invite_list.names(),
                self.insecure.isChecked(),
            )
        except InsecureWithInvites:
            QMessageBox.warning(
                self,
                "Cannot start the server",
                "Invites per facility carry join codes, which an insecure "
                "server does not use; untick Insecure, or revoke those invites",
            )
            return False
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
            invites=invites,
        )
        self._reset_view(settings)
        self.worker = RunnerWorker(lambda emit: ServerRunner(settings, options, emit))
        self.worker.sig_event.connect(self._on_event)
        self.worker.sig_done.connect(self._on_done)
        self.run_thread = start_worker(self.worker)
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
        """A run keeps the settings it started with; the port's free/in-use mark means
        nothing meanwhile."""
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
        match e:
            case ServerListening():
                self.out_dir = Path(e.out_dir)
                self.invite.setText(e.invite)
                self.invite.setCursorPosition(0)  # its start (address, code) in view, not the fingerprint's tail
                self.invite.setToolTip(e.invite)
                self.sig_invite.emit(e.invite)
                self.copy.setEnabled(True)
                self.status.setText(f"Waiting for {self.min_clients.value()} facilities. Give them the invite.")
                self._show_named_invites()
            case ClientJoined():
                self._set(e.name, "Windows", f"{e.samples:,}")
                self._set(e.name, "State", "connected")
                self.invite_list.mark(e.name, "joined")
            case ClientRefused():
                self._set(e.name, "State", "refused")
                self.table.item(self._row_for(e.name), 2).setToolTip(e.reason)
            case ClientLeft():
                if not self._run_over:  # leaving after the last round is the normal goodbye
                    self._set(e.name, "State", "dropped")
                self.invite_list.mark(e.name, "left")
            case Finished():
                self._run_over = True
            case Waiting():
                self._waiting(e)
            case FacilityDropped():
                self._set(e.name, "State", f"out of round {e.round}")
                self.table.item(self._row_for(e.name), COLUMNS.index("State")).setToolTip(e.reason)
            case RoundStarted():
                self._paused = False
                for name in e.participants:
                    self._set(name, "State", "training")
                self.status.setText(f"Round {e.round} of {e.rounds}: facilities are training.")
            case RoundFinished():
                self._round_finished(e)
            case Failed():
                self._run_over = True
        if isinstance(e, LOGGED_AS_NARRATED) and (line := narration.sentence(e)):
            self.log.add(line)
        self.sig_event.emit(e)

    def _waiting(self, e: Waiting) -> None:
        """The run waits for facilities: the countdown in the status line, the pause once in
        the log."""
        answer = f"each round then waits up to {self.timeout.value()} s for every answer"
        if self.history or self._paused:
            self.status.setText(f"Paused: {narration.waiting(e)} (then the run ends and can be resumed); {answer}.")
        else:
            self.status.setText(
                f"Waiting for facilities: {e.connected} of {e.needed} connected; {e.detail}; {answer}. Give them the invite."
            )
        if self.history and not self._paused:
            self.log.add("paused: " + narration.waiting(e))
            self.progress.setFormat("%v of %m rounds done — paused")
            for name in self.rows:  # the round runs again once enough are back
                if self.table.item(self._row_for(name), COLUMNS.index("State")).text() == "training":
                    self._set(name, "State", "waiting")
        self._paused = bool(self.history)

    def _mark_cut_short(self, result) -> None:
        """A stopped run: no facility is still training, and no time is left to count."""
        for name in self.rows:
            if self.table.item(self._row_for(name), COLUMNS.index("State")).text() == "training":
                self._set(name, "State", "stopped")
        self.progress.setFormat("%v of %m rounds done — stopped")

    def _round_finished(self, e: RoundFinished) -> None:
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
                if len(self.per_client_eval) <= CURVES_SHOWN:
                    self.client_plot.set_series(name, xs, ys)
            row_ = self._row_for(name)
            done = self.table.item(row_, COLUMNS.index("Rounds")).text()
            self._set(name, "Rounds", int(done or 0) + 1)
        if len(self.per_client_eval) > CURVES_SHOWN:
            show_spread(self.client_plot, self.per_client_eval)
        if e.epsilon is not None:
            self.privacy.setText(
                f"Privacy: ε = {e.epsilon:.2f} after {e.round} round{'s' if e.round != 1 else ''} (δ = {self._run_delta:g})"
            )
            self.privacy.show()
        self.progress.setValue(e.round)
        elapsed = time.monotonic() - self._started_at
        per_round = sum(h.seconds for h in self.history) / len(self.history)
        left = per_round * (e.rounds - e.round)
        self.progress.setFormat(
            f"%v of %m rounds done — about {left:.0f} s left" if e.round < e.rounds else "%v of %m rounds done"
        )
        self.log.add(f"{narration.round_finished(e)}  ({elapsed:.0f} s so far)")
        if e.agreed_threshold is not None:
            self.log.add(f"the facilities agreed an anomaly threshold of {e.agreed_threshold:.4g}")

    @Slot(object)
    def _on_done(self, result) -> None:
        self.worker = None
        self.run_thread = None
        self.start.setEnabled(True)
        self.stop.setEnabled(False)
        self.copy.setEnabled(False)
        self._lock_settings(False)
        self.invite_list.forget_lines()  # the run's codes died with it; the names wait for the next start
        self._update_add_facility()
        if isinstance(result, Exception):
            self.status.setText(f"Could not run: {result}")
            QMessageBox.warning(self, "Server stopped", str(result))
        elif isinstance(result, Failed):
            self.status.setText(f"Stopped: {result.message}")
            QMessageBox.warning(self, "Server stopped", result.message)
        else:
            last = self.history[-1] if self.history else None
            summary = (
                f"Finished {counted(result.rounds_completed, 'round')}"
                if result.complete
                else f"Stopped at round {result.rounds_completed} of {result.rounds_planned}"
            )
            if not result.complete:
                self._mark_cut_short(result)
            if last is not None and self.history[0].eval_loss:
                summary += (
                    f": eval loss {self.history[0].eval_loss:.4f} → {last.eval_loss:.4f} with {len(last.per_client)} facilities"
                )
            self.status.setText(summary + f". Results in {result.out_dir}")
            self.log.add(summary)
        has_model = self.out_dir is not None and (self.out_dir / "global_model" / "model.json").exists()
        self.save_model.setEnabled(has_model)
        self.export.setEnabled(bool(self.history))
        self._check_port()
        self.sig_finished.emit(result)
