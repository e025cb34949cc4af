"""A facility's page: its data, the server, Test connection, training, anomalies (gui layer)."""

from __future__ import annotations

import html
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..core.dataset import BROKEN, describe, load_sensor_csv
from ..core.detector import describe_model, length_verdict, score_data
from ..core.errors import UserError
from ..core.paths import default_data_dir, user_data_dir
from ..core.scores_csv import write_scores_csv
from ..fl.addresses import ServerAddress, parse_server_address
from ..fl.choices import INSECURE_CLIENT_LINE, STRATEGIES
from ..fl.client_runner import ClientOptions, ClientRunner
from ..fl.invite import Invite, looks_like_invite, parse_invite
from ..fl.security import KnownServers, normalise_join_code, short_fingerprint
from .plots import AnomalyView, LossPlot, SensorPreview, figures_text
from .theme import coloured
from .widgets import CheckList, LogView, confirm, page_layout, row
from .worker import RunnerWorker, call_in_thread, start_worker

PREVIEW_SENSORS = 4


class ClientPage(QWidget):
    sig_finished = Signal(object)
    """Training ended: the facility's Finished or Failed event (or an exception)."""
    sig_scored = Signal()
    """The anomaly view is filled (after training)."""

    def __init__(self, settings=None, parent=None, known_servers: KnownServers | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.known_servers = known_servers
        self.data = None
        self.csv_path: Path | None = None
        self.worker: RunnerWorker | None = None
        self._jobs: list = []  # (worker, thread) of short tasks, kept alive until done
        self.result = None
        self.score = None
        self._train_x: list[float] = []
        self._train_y: list[float] = []
        self._eval_x: list[float] = []
        self._eval_y: list[float] = []

        # -- data -----------------------------------------------------------------------
        data_box = QGroupBox("Your data")
        self.source = QComboBox()
        self.source.addItems([f"Default facility {i}" for i in range(5)] + ["A CSV file of your own…"])
        self.pick = QPushButton("Choose &file…")
        self.data_info = QLabel("No data loaded.")
        self.data_info.setWordWrap(True)
        self.data_info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.preview = SensorPreview()
        self.preview.setMinimumHeight(160)
        dl = QVBoxLayout(data_box)
        dl.addLayout(row(self.source, self.pick, None))
        dl.addWidget(self.data_info)
        dl.addWidget(self.preview)

        # -- server ---------------------------------------------------------------------
        server_box = QGroupBox("Server")
        self.address = QLineEdit(placeholderText="paste the invite, or type host:port")
        self.join_code = QLineEdit(placeholderText="join code (already in an invite)")
        self.insecure = QCheckBox("Insecure server (no encryption)")
        self.insecure_warning = QLabel(coloured("⚠ " + html.escape(INSECURE_CLIENT_LINE[:1].upper() + INSECURE_CLIENT_LINE[1:]) + ".",
                                                "warning", self))
        self.insecure_warning.setWordWrap(True)
        self.insecure_warning.hide()
        self.test = QPushButton("Test &connection")
        self.forget = QPushButton("Forget this ser&ver…")
        self.forget.setToolTip("Stop trusting the certificate this computer remembered for the server in the address field")
        self.forget.setEnabled(False)
        self.checks = CheckList()
        self.checks.setMinimumHeight(150)
        sf = QFormLayout(server_box)
        sf.addRow("Invite or address", self.address)
        sf.addRow("Join code", self.join_code)
        sf.addRow(self.insecure)
        sf.addRow(self.insecure_warning)
        sf.addRow(row(self.test, self.forget, None))

        self.start = QPushButton("&Join and train")
        self.start.setDefault(True)
        self.stop = QPushButton("S&top")
        self.stop.setEnabled(False)
        left = QVBoxLayout()
        left.addWidget(data_box, 1)
        left.addWidget(server_box)
        left.addLayout(row(self.start, self.stop, None))
        left_w = QWidget()
        left_w.setLayout(left)
        left_w.setMaximumWidth(560)

        # -- run view -------------------------------------------------------------------
        self.status = QLabel("Not connected.")
        self.status.setWordWrap(True)
        self.strategy = QLabel()  # what the server chose, once the first round says
        self.strategy.hide()
        self.progress = QProgressBar()
        self.progress.setFormat("round %v of %m")
        self.loss_plot = LossPlot("This facility: loss", x_label="round")
        self.log = LogView()
        self.anomaly = AnomalyView()
        self.figures = QLabel("Train first: the anomaly view appears after the last round.")
        self.figures.setWordWrap(True)
        self.figures.setTextFormat(Qt.TextFormat.RichText)
        self.export = QPushButton("&Export flagged windows as CSV…")
        self.export.setEnabled(False)
        training = QSplitter(Qt.Orientation.Vertical)
        training.addWidget(self.loss_plot)
        training.addWidget(self.log)
        anomalies = QWidget()
        al = QVBoxLayout(anomalies)
        al.addWidget(self.anomaly, 1)
        al.addWidget(self.figures)
        al.addLayout(row(self.export, None))
        self.tabs = QTabWidget()
        self.tabs.addTab(training, "Training")
        self.tabs.addTab(anomalies, "Anomalies")
        self.tabs.addTab(self.checks, "Connection test")
        right = QVBoxLayout()
        right.addWidget(self.status)
        right.addWidget(self.strategy)
        right.addWidget(self.progress)
        right.addWidget(self.tabs, 1)
        right_w = QWidget()
        right_w.setLayout(right)

        page_layout(self, left_w, right_w)

        self.source.currentIndexChanged.connect(self._source_changed)
        self.pick.clicked.connect(self._pick_file)
        self.test.clicked.connect(self.test_connection)
        self.start.clicked.connect(self.start_client)
        self.stop.clicked.connect(self.stop_client)
        self.export.clicked.connect(self._export)
        self.address.textChanged.connect(self._address_changed)
        self.insecure.toggled.connect(self._show_insecure_warning)
        self.forget.clicked.connect(self.forget_server)
        self._load_settings()

    # -- settings -------------------------------------------------------------------------

    def _load_settings(self) -> None:
        if self.settings is None:
            return
        self.address.setText(remembered_address(self.settings.get("client/address", "", str)))
        path = self.settings.get("client/data", "", str)
        index = self.settings.get("client/source", 0, int)
        if path and Path(path).is_file() and index == 5:
            self.source.blockSignals(True)
            self.source.setCurrentIndex(5)
            self.source.blockSignals(False)
            self.load_data(Path(path))
        elif 0 <= index < 5:
            self.source.setCurrentIndex(index)

    def _save_settings(self) -> None:
        if self.settings is None:
            return
        self.settings.set("client/address", remembered_address(self.address.text()))
        self.settings.set("client/source", self.source.currentIndex())
        self.settings.set("client/data", str(self.csv_path or ""))

    # -- data -----------------------------------------------------------------------------

    def _source_changed(self, index: int) -> None:
        if index < 5:
            self.load_default(index)
        else:
            self._pick_file()

    def _pick_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose your sensor CSV", str(Path.home()), "CSV files (*.csv *.txt);;All files (*)")
        if path:
            self.load_data(Path(path))

    def load_default(self, client: int) -> None:
        if self.source.currentIndex() != client:
            self.source.blockSignals(True)
            self.source.setCurrentIndex(client)
            self.source.blockSignals(False)
        def work(emit):
            from ..core.simulator import ensure_default_data

            folder = ensure_default_data(default_data_dir(), progress=lambda m, f: emit(m))
            return folder / f"client_{client}.csv"

        self.data_info.setText("Preparing the default data (first time only, a few seconds)…")
        self._run_job(work, lambda r: self.load_data(r) if isinstance(r, Path) else self._data_failed(r))

    def load_data(self, path: Path) -> None:
        """Read and check a CSV in a worker; the preview fills in when it is ready."""
        self.data_info.setText(f"Reading {path.name}…")
        self._run_job(lambda emit: load_sensor_csv(path), lambda r: self._data_loaded(path, r))

    def _data_loaded(self, path: Path, result) -> None:
        if isinstance(result, Exception):
            self._data_failed(result, path)
            return
        self.data, self.csv_path = result, path
        long_enough, verdict = length_verdict(result)
        verdict_html = coloured(html.escape(verdict), "ok" if long_enough else "failed", self)
        self.data_info.setText(html.escape(describe(result)).replace("\n", "<br>") + "<br>" + verdict_html)
        k = min(PREVIEW_SENSORS, len(result.sensors))
        self.preview.show(result.timestamps, result.values[:, :k], result.sensors[:k])
        self.log.add(f"data: {path.name}, {result.rows:,} rows, {len(result.sensors)} sensors")

    def _data_failed(self, exc, path: Path | None = None) -> None:
        message = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
        self.data_info.setText(coloured(html.escape(f"Cannot use this file: {message}"), "failed", self))
        QMessageBox.warning(self, "This file cannot be used", message)

    def _run_job(self, fn, on_done, on_event=None) -> None:
        job: list = []

        def done(result):
            on_done(result)
            if job and job[0] in self._jobs:
                self._jobs.remove(job[0])

        pair = call_in_thread(fn, done, on_event, self)
        job.append(pair)
        self._jobs.append(pair)

    # -- server address -------------------------------------------------------------------

    def _address_changed(self, text: str) -> None:
        is_invite = looks_like_invite(text)
        self.join_code.setEnabled(not is_invite)
        self.insecure.setEnabled(not is_invite)
        self._show_insecure_warning()
        self._update_forget()

    def _invite_in_field(self) -> Invite | None:
        """The invite in the address field; None for an address, or an invite that does not parse (yet)."""
        text = self.address.text()
        if not looks_like_invite(text):
            return None
        try:
            return parse_invite(text)
        except UserError:
            return None

    def _show_insecure_warning(self, *_args) -> None:
        """Shout when the connection would be plain: the box ticked, or an invite without a certificate."""
        invite = self._invite_in_field()
        plain = invite.insecure if invite else self.insecure.isEnabled() and self.insecure.isChecked()
        self.insecure_warning.setVisible(plain)

    def _pinned(self) -> tuple[ServerAddress, str] | None:
        """The address in the field and the certificate this computer trusts for it, if it trusts one."""
        if self.known_servers is None:
            return None
        invite = self._invite_in_field()
        try:
            address = invite.address if invite else parse_server_address(self.address.text())
            fp = self.known_servers.get(address)
        except UserError:  # no usable address yet, or an unreadable list (its own message says what to do)
            return None
        return (address, fp) if fp else None

    def _update_forget(self) -> None:
        self.forget.setEnabled(self.worker is None and self._pinned() is not None)

    def forget_server(self) -> None:
        """Stop trusting the pinned certificate of the server in the address field, after asking."""
        pinned = self._pinned()
        if pinned is None:
            return self._update_forget()
        address, fp = pinned
        if not confirm(self, "Forget this server",
                       f"Forget the server at {address}? This computer has trusted its certificate "
                       f"({short_fingerprint(fp)}…) since it first joined it. The next join checks the certificate "
                       "afresh: against the invite, or trusting it again on first use.", "&Forget"):
            return
        self.known_servers.forget(address)
        self._update_forget()
        self.status.setText(f"Forgot the server at {address}: this computer no longer trusts its certificate.")
        self.log.add(f"forgot the server at {address}")

    def target(self) -> tuple[ServerAddress, str, str | None, bool]:
        """(address, join code, fingerprint, insecure) from the fields, or UserError."""
        text = self.address.text().strip()
        if looks_like_invite(text):
            inv = parse_invite(text)
            return inv.address, inv.join_code, inv.fingerprint, inv.insecure
        address = parse_server_address(text)
        insecure = self.insecure.isChecked()
        code = normalise_join_code(self.join_code.text()) if self.join_code.text().strip() else ""
        if not insecure and not code:
            raise UserError("this server needs a join code: paste the whole invite, or type the join code")
        return address, code, None, insecure

    def test_connection(self) -> None:
        from ..fl.diagnostics import run_checks

        try:
            address, code, fp, insecure = self.target()
        except UserError as exc:
            self.checks.clear()
            self.checks.add_result("failed", "Address", str(exc), "type the address as host:port, or paste the invite")
            self.tabs.setCurrentWidget(self.checks)
            return
        self.checks.clear()
        self.tabs.setCurrentWidget(self.checks)
        self.test.setEnabled(False)

        def work(emit):
            return run_checks(address, insecure=insecure, fingerprint=fp, join_code=code, known_servers=self.known_servers,
                              probe_join=_probe, on_result=emit)

        def on_result(r):
            self.checks.add_result(r.status, r.step, r.detail, r.fix)

        self._run_job(work, lambda _r: self.test.setEnabled(True), on_result)

    # -- training -------------------------------------------------------------------------

    def start_client(self) -> bool:
        if self.worker is not None:
            return False
        try:
            if self.csv_path is None or self.data is None:
                raise UserError("choose your data first (a default facility or a CSV file)")
            address, code, fp, insecure = self.target()
        except UserError as exc:
            QMessageBox.warning(self, "Cannot join yet", str(exc))
            return False
        self._save_settings()
        out = user_data_dir() / "models" / f"{self.csv_path.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
        options = ClientOptions(insecure=insecure, join_code=code, fingerprint=fp, known_servers=None if insecure else self.known_servers,
                                name=_facility_name(self._invite_in_field(), self.csv_path), out_dir=out)
        csv = self.csv_path
        self._train_x, self._train_y, self._eval_x, self._eval_y = [], [], [], []
        self.loss_plot.clear()
        self.progress.setValue(0)
        self.strategy.hide()
        self.worker = RunnerWorker(lambda emit: ClientRunner(csv, address, options, emit))
        self.worker.sig_event.connect(self._on_event)
        self.worker.sig_done.connect(self._on_done)
        self._thread = start_worker(self.worker, self)
        self.start.setEnabled(False)
        self.stop.setEnabled(True)
        self.forget.setEnabled(False)
        self.status.setText(f"Connecting to {address}…")
        return True

    def stop_client(self) -> None:
        if self.worker is not None:
            self.stop.setEnabled(False)
            self.status.setText("Stopping…")
            self.worker.stop()

    def is_running(self) -> bool:
        """Training, or loading / scoring data in the background."""
        return self.worker is not None or bool(self._jobs)

    def is_training(self) -> bool:
        return self.worker is not None

    @Slot(object)
    def _on_event(self, e) -> None:
        k = e.kind
        if k == "ConnectionState":
            labels = {"connecting": "Connecting…", "connected": "Connected; waiting for the round to start.",
                      "training": f"Training ({e.detail})…", "evaluating": f"Evaluating the global model ({e.detail})…",
                      "reconnecting": f"Reconnecting: {e.detail}", "trusted": e.detail,
                      "finishing": "The rounds are over: adapting the federation's model to your readings…"}
            self.status.setText(labels.get(e.state, e.detail))
            if e.state in ("reconnecting", "waiting", "trusted", "connected", "agreed", "finishing"):
                self.log.add(e.detail)
        elif k == "EpochLoss":
            self._train_x.append(e.round - 1 + e.epoch / e.epochs)
            self._train_y.append(e.loss)
            self.loss_plot.set_series("train (per epoch)", self._train_x, self._train_y)
        elif k == "EvaluateResult":
            self._eval_x.append(float(e.round))
            self._eval_y.append(e.eval_loss)
            self.loss_plot.set_series("eval (global model, held-out part)", self._eval_x, self._eval_y)
            self.progress.setValue(e.round)
            self.log.add(f"round {e.round}: eval loss {e.eval_loss:.4f} on {e.samples:,} held-out windows")
        elif k == "FitResult":
            self.progress.setMaximum(max(e.rounds, e.round))
            if e.strategy:
                self._show_strategy(e.strategy, e.proximal_mu)
            self.log.add(f"round {e.round}: trained on {e.samples:,} windows, loss {e.train_loss:.4f} ({e.seconds:.1f} s)")

    def _show_strategy(self, name: str, mu: float) -> None:
        chosen = STRATEGIES.get(name)
        text = f"Strategy (set by the server): {chosen.title if chosen else name}"
        if name == "fedprox":
            text += f", μ {mu:g}"
        self.strategy.setText(text)
        self.strategy.setToolTip(chosen.line[:1].upper() + chosen.line[1:] if chosen else "")
        self.strategy.show()

    @Slot(object)
    def _on_done(self, result) -> None:
        runner = self.worker.runner if self.worker else None
        self.worker = None
        self.start.setEnabled(True)
        self.stop.setEnabled(False)
        self._update_forget()  # a first join pins the server
        self.result = result
        if isinstance(result, Exception):
            self.status.setText(f"Could not join: {result}")
            QMessageBox.warning(self, "Training stopped", str(result))
        elif result.kind == "Failed":
            self.status.setText(f"Stopped: {result.message}")
            QMessageBox.warning(self, "Training stopped", result.message)
        else:
            self.status.setText(_ending_words(result) + " Finding anomalies in your data…")
            self.log.add(result.message)
            if runner is not None and runner.facility is not None and runner.global_params is not None:
                facility, params, agreed = runner.facility, runner.global_params, runner.agreed_threshold
                self._run_job(lambda emit: _score(facility, params, agreed), self._scored)
        self.sig_finished.emit(result)

    def _scored(self, result) -> None:
        if isinstance(result, Exception):
            self.status.setText(f"Could not score the data: {result}")
            return
        data, score, model = result
        self.score = (data, score)
        failures = list(np.flatnonzero(data.status == BROKEN)) if data.status is not None else []
        self.anomaly.show_result(data.timestamps, score.scores, score.threshold, score.flags, score.events, failures, data.labels)
        summary = figures_text(score.metrics) or f"{int(score.flags.sum()):,} rows flagged in {len(score.events)} event(s)."
        self.figures.setText(f"Model: {html.escape(model)}<br>{summary}")
        self.export.setEnabled(True)
        self.tabs.setCurrentIndex(1)
        ended = "Finished." if getattr(self.result, "complete", True) else _ending_words(self.result)
        self.status.setText(f"{ended} {len(score.events)} anomalous stretch(es) flagged in your data.")
        self.sig_scored.emit()

    def _export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export flagged windows", f"{self.csv_path.stem}-anomalies.csv", "CSV (*.csv)")
        if path:
            data, score = self.score
            write_scores_csv(Path(path), data, score)
            self.log.add(f"scores exported to {path}")


def _facility_name(invite: Invite | None, csv: Path) -> str:
    """A facility's own invite names it (the coordinator knows it by that name); else its file does."""
    return invite.name if invite is not None and invite.name else csv.stem


def _ending_words(result) -> str:
    """How the run ended, as the server said (a run cut short says so)."""
    if result.complete:
        return f"The run completed ({result.rounds_completed} rounds)."
    said = result.message[:1].upper() + result.message[1:]
    if result.message == "stopped":
        said = "You stopped taking part"
    planned = f" of {result.rounds_planned}" if result.rounds_planned else ""
    return f"{said}: the model has {result.rounds_completed}{planned} rounds (an incomplete run)."


def _score(facility, params, agreed_threshold=None):
    # The detector the run saved (personalised on this facility's rows), else made the same way.
    detector = facility.final or facility.final_detector(params, agreed_threshold=agreed_threshold)
    return facility.data, score_data(detector, facility.data), describe_model(detector.info, "your own readings", "your own readings")


def _probe(address, root, code):
    from ..fl.diagnostics import CheckResult
    from ..fl.join_probe import probe_join_code

    ok, detail = probe_join_code(address, root, code)
    if ok:
        return CheckResult("Join code accepted", "ok", detail)
    return CheckResult("Join code accepted", "failed", detail, "check the join code, or ask the coordinator for a fresh invite")


def remembered_address(text: str) -> str:
    """What the app keeps of the address field: HOST:PORT, never an invite's join code."""
    text = text.strip()
    if not looks_like_invite(text):
        return text
    try:
        return parse_invite(text).address.target
    except UserError:
        return ""
