"""A facility's page: its data, the server, Test connection, training, anomalies (gui layer).

The page is built from its boxes (client_boxes.py), which make its widgets as attributes of the
page; here they get their behaviour: loading data, the server's address and trust, the run and
its events, and the anomaly view filled from the model the run saved.
"""

from __future__ import annotations

import html
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import QTimer, Signal, Slot
from PySide6.QtWidgets import QFileDialog, QMessageBox, QPushButton, QVBoxLayout, QWidget

from ..core.dataset import BROKEN, load_sensor_csv
from ..core.detector import describe_model, score_data
from ..core.errors import UserError
from ..core.model_store import META_FILE, load_detector
from ..core.paths import DEFAULT_FACILITIES, default_client_csv, default_data_dir, user_data_dir
from ..core.scores_csv import write_scores_csv
from ..core.task import Cancelled, TaskState
from ..core.wording import counted
from ..fl import narration
from ..fl.addresses import ServerAddress
from ..fl.alone import COMPARISON_FILE
from ..fl.child_process import ChildRunner
from ..fl.choices import STRATEGIES
from ..fl.client_runner import ClientOptions, ClientRunner
from ..fl.events import ConnectionState, EpochLoss, EvaluateResult, Failed, Finished, FitResult
from ..fl.invite import looks_like_invite
from ..fl.resolve import JoinCodeNeeded, Target, invite_in, remembered_address, resolve_target, server_address
from ..fl.security import KnownServers, short_fingerprint
from .client_boxes import data_box, run_view, server_box
from .data_reading import read_file
from .plots import figures_text
from .settings import RECENT_MODELS
from .theme import coloured
from .widgets import confirm, page_layout, row
from .worker import RunnerWorker, call_in_thread, start_worker

OWN_FILE = DEFAULT_FACILITIES  # the data source after the default facilities: a CSV file of one's own


class ClientPage(QWidget):
    sig_finished = Signal(object)
    """Training ended: the facility's Finished or Failed event (or an exception)."""
    sig_scored = Signal()
    """The anomaly view is filled (after training)."""
    sig_open_model = Signal(object, object)
    """Open this model folder in Monitor, on this data file."""

    def __init__(self, settings=None, parent=None, known_servers: KnownServers | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.known_servers = known_servers
        self.data = None
        self.csv_path: Path | None = None
        self._run_csv: Path | None = None  # what the latest run trains on (another file may be loaded meanwhile)
        self.worker: RunnerWorker | None = None
        self._jobs: list = []  # (worker, thread) of short tasks, kept alive until done
        self.result = None
        self._trained = False
        self.score = None
        self._data_html = ""  # what the data box says of the file in use
        self._train_x: list[float] = []
        self._train_y: list[float] = []
        self._eval_x: list[float] = []
        self._eval_y: list[float] = []

        data, server = data_box(self), server_box(self)
        page_layout(self, self._controls_column(data, server), run_view(self), actions=self._actions())
        self._connect()
        self._load_settings()

    def _controls_column(self, data: QWidget, server: QWidget) -> QWidget:
        """The left column: your data, the server."""
        left = QVBoxLayout()
        left.addWidget(data)
        left.addWidget(server)
        left.addStretch(1)
        left_w = QWidget()
        left_w.setLayout(left)
        left_w.setMaximumWidth(560)
        return left_w

    def _actions(self) -> QWidget:
        """Join and Stop, under the left column where no preview can push them out of sight."""
        self.start = QPushButton("&Join and train")
        self.start.setDefault(True)
        self.stop = QPushButton("S&top")
        self.stop.setEnabled(False)
        actions = QWidget()
        actions.setLayout(row(self.start, self.stop, None))
        return actions

    def _connect(self) -> None:
        """Give the boxes' widgets their behaviour."""
        self.source.currentIndexChanged.connect(self._source_changed)
        self.pick.clicked.connect(self._pick_file)
        self.stop_reading.clicked.connect(lambda: self._reading.cancel())
        self.test.clicked.connect(self.test_connection)
        self.start.clicked.connect(self.start_client)
        self.stop.clicked.connect(self.stop_client)
        self.export.clicked.connect(self._export)
        self.comparison.sig_open.connect(lambda folder: self.sig_open_model.emit(folder, self._run_csv or self.csv_path))
        self.address.textChanged.connect(self._address_changed)
        self.insecure.toggled.connect(self._show_insecure_warning)
        self.forget.clicked.connect(self.forget_server)

    # -- settings -------------------------------------------------------------------------

    def _load_settings(self) -> None:
        if self.settings is None:
            return
        self.address.setText(remembered_address(self.settings.get("client/address", "", str)))
        path = self.settings.get("client/data", "", str)
        index = self.settings.get("client/source", 0, int)
        if path and Path(path).is_file() and index == OWN_FILE:
            self.source.blockSignals(True)
            self.source.setCurrentIndex(OWN_FILE)
            self.source.blockSignals(False)
            self.load_data(Path(path))
        elif 0 <= index < DEFAULT_FACILITIES:
            self.source.setCurrentIndex(index)

    def _save_settings(self) -> None:
        if self.settings is None:
            return
        self.settings.set("client/address", remembered_address(self.address.text()))
        self.settings.set("client/source", self.source.currentIndex())
        self.settings.set("client/data", str(self.csv_path or ""))

    # -- data -----------------------------------------------------------------------------

    def _source_changed(self, index: int) -> None:
        if index < DEFAULT_FACILITIES:
            self.load_default(index)
        else:
            self._pick_file()

    def _pick_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Choose your sensor CSV", str(Path.home()), "CSV files (*.csv *.txt);;All files (*)"
        )
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
            return default_client_csv(client, folder)

        self.data_info.setText("Preparing the default data (first time only, a few seconds)…")
        self._run_job(work, lambda r: self.load_data(r) if isinstance(r, Path) else self._data_failed(r))

    def load_data(self, path: Path) -> None:
        """Read and check a CSV in a worker; the preview fills in when it is ready."""
        self.data_info.setText(f"Reading {path.name}…")
        self._reading = state = TaskState()
        self.stop_reading.show()
        shown = lambda e: self.data_info.setText(html.escape(narration.capitalised(e[0])))  # noqa: E731 (rows read, time left)
        self._run_job(lambda emit: read_file(path, emit, state), lambda r: self._data_loaded(path, r), shown)

    def _data_loaded(self, path: Path, result) -> None:
        self.stop_reading.hide()
        if isinstance(result, Exception):
            self._data_failed(result, path)
            return
        self.data, self.csv_path = result.data, path
        verdict_html = coloured(html.escape(result.verdict), "ok" if result.long_enough else "failed", self)
        self._data_html = html.escape(result.summary).replace("\n", "<br>") + "<br>" + verdict_html
        self.data_info.setText(self._data_html)
        self.preview.show(result.times, result.values, result.names)
        self.log.add(f"data: {path.name}, {result.data.rows:,} rows, {len(result.data.sensors)} sensors")

    def _data_failed(self, exc, path: Path | None = None) -> None:
        message = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
        message = "you stopped reading it" if isinstance(exc, Cancelled) else message
        name = f"{path.name}" if path is not None else "this file"
        error = coloured(html.escape(f"Cannot use {name}: {message}"), "failed", self)
        if self.data is not None and self.csv_path is not None:  # the file in use stays in use: say which
            error += f"<br><b>Still using {html.escape(self.csv_path.name)}:</b><br>{self._data_html}"
        self.data_info.setText(error)
        if not isinstance(exc, Cancelled):
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

    def _show_insecure_warning(self, *_args) -> None:
        """Shout when the connection would be plain: the box ticked, or an invite without
        a certificate."""
        invite = invite_in(self.address.text())
        plain = invite.insecure if invite else self.insecure.isEnabled() and self.insecure.isChecked()
        self.insecure_warning.setVisible(plain)

    def _pinned(self) -> tuple[ServerAddress, str] | None:
        """The address in the field and the certificate this computer trusts for it, if it
        trusts one."""
        if self.known_servers is None:
            return None
        try:
            address = server_address(self.address.text())
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
        if not confirm(
            self,
            "Forget this server",
            f"Forget the server at {address}? This computer has trusted its certificate "
            f"({short_fingerprint(fp)}…) since it first joined it. The next join checks the certificate "
            "afresh: against the invite, or trusting it again on first use.",
            "&Forget",
        ):
            return
        self.known_servers.forget(address)
        self._update_forget()
        self.status.setText(f"Forgot the server at {address}: this computer no longer trusts its certificate.")
        self.log.add(f"forgot the server at {address}")

    def target(self) -> Target:
        """The server and how to join it, from the fields (an invite ignores the join code field,
        which is disabled for it), or UserError."""
        text = self.address.text()
        code = "" if looks_like_invite(text.strip()) else self.join_code.text()
        return resolve_target(text, code, self.insecure.isChecked())

    def test_connection(self) -> None:
        from ..fl.diagnostics import run_checks

        try:
            target = self.target()
        except JoinCodeNeeded:  # the address can still be tried; the join step says what is missing
            target = replace(resolve_target(self.address.text(), "", insecure=True), insecure=False)
        except UserError as exc:
            self.checks.clear()
            self.checks.add_result("failed", "Address", str(exc), "type the address as host:port, or paste the invite")
            self.tabs.setCurrentWidget(self.checks)
            return
        self.checks.clear()
        self.tabs.setCurrentWidget(self.checks)
        self.test.setEnabled(False)

        def work(emit):
            return run_checks(
                target.address,
                insecure=target.insecure,
                fingerprint=target.fingerprint,
                join_code=target.join_code,
                known_servers=self.known_servers,
                probe_join=_probe,
                on_result=emit,
            )

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
            target = self.target()
        except UserError as exc:
            QMessageBox.warning(self, "Cannot join yet", str(exc))
            return False
        self._save_settings()
        self.data_info.setText(self._data_html)  # an earlier file's error is past: this is the file trained on
        out = user_data_dir() / "models" / f"{self.csv_path.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
        # a facility's own invite names it (the coordinator knows it so); else its file does
        options = ClientOptions(
            insecure=target.insecure,
            join_code=target.join_code,
            fingerprint=target.fingerprint,
            known_servers=None if target.insecure else self.known_servers,
            name=target.invited_name or self.csv_path.stem,
            out_dir=out,
            compare=True,  # the same rows trained alone: what federating gave this facility
        )
        address = target.address
        csv = self._run_csv = self.csv_path
        self._train_x, self._train_y, self._eval_x, self._eval_y = [], [], [], []
        self.loss_plot.clear()
        # Until the server says how many rounds, the bar says so rather than Qt's "0 of 100"
        # or the last run's count.
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("waiting for the first round")
        self._trained = False  # a round's training began (a refusal before then: could not join)
        self.strategy.hide()
        self.comparison.clear()
        self.tabs.setCurrentWidget(self.training_tab)
        # In a process of its own: training never holds the lock the window needs (child_process).
        self.worker = RunnerWorker(lambda emit: ChildRunner(ClientRunner, (csv, address, options), emit))
        self.worker.sig_event.connect(self._on_event)
        self.worker.sig_done.connect(self._on_done)
        self._thread = start_worker(self.worker)
        self.start.setEnabled(False)
        self.stop.setEnabled(True)
        self.forget.setEnabled(False)
        self.status.setText(f"Connecting to {address}…")
        return True

    def join_when_ready(self, invite: str, still_wanted) -> None:
        """Join with ``invite`` as soon as this page's data is loaded (the default data may still
        be read in the background), while ``still_wanted()`` says so (the demo page)."""
        self.address.setText(invite)
        if self.data is not None:
            self.start_client()
        else:
            QTimer.singleShot(200, lambda: self.join_when_ready(invite, still_wanted) if still_wanted() else None)

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
        match e:
            case ConnectionState():
                self.status.setText(narration.connection_status(e))
            case EpochLoss():
                self._train_x.append(e.round - 1 + e.epoch / e.epochs)
                self._train_y.append(e.loss)
                self.loss_plot.set_series("train (per epoch)", self._train_x, self._train_y)
            case EvaluateResult():
                self._eval_x.append(float(e.round))
                self._eval_y.append(e.eval_loss)
                self.loss_plot.set_series("eval (global model, held-out part)", self._eval_x, self._eval_y)
                self.progress.setValue(e.round)
            case FitResult():
                self.progress.setMaximum(max(e.rounds, e.round))
                self.progress.setFormat("%v of %m rounds done")
                self._trained = True
                if e.strategy:
                    self._show_strategy(e.strategy, e.proximal_mu)
        if isinstance(e, ConnectionState | EvaluateResult | FitResult) and (line := narration.sentence(e)):
            self.log.add(line)

    def _show_strategy(self, name: str, mu: float) -> None:
        chosen = STRATEGIES.get(name)
        text = f"Strategy (set by the server): {chosen.title if chosen else name}"
        if name == "fedprox":
            text += f", μ {mu:g}"
        self.strategy.setText(text)
        self.strategy.setToolTip(narration.capitalised(chosen.line) if chosen else "")
        self.strategy.show()

    @Slot(object)
    def _on_done(self, result) -> None:
        self.worker = None
        self.start.setEnabled(True)
        self.stop.setEnabled(False)
        self._update_forget()  # a first join pins the server
        self.result = result
        if isinstance(result, Exception):
            self.status.setText(f"Could not join: {result}")
            QMessageBox.warning(self, "Training stopped", str(result))
        elif isinstance(result, Failed):
            started = self._trained
            self.status.setText(f"Stopped: {result.message}" if started else f"Could not join: {result.message}")
            QMessageBox.warning(self, "Training stopped" if started else "Could not join", result.message)
        else:
            self.status.setText(narration.ending(result) + " Finding anomalies in your data…")
            self.log.add(result.message)
            self._score_run(result)
        self.sig_finished.emit(result)

    def _score_run(self, result: Finished) -> None:
        """Fill the anomaly view from the model the run saved in its folder (as ``pumpfl score``
        would); a run you stopped saves one too, once a round got that far."""
        saved = Path(result.out_dir) if result.out_dir else None
        if saved is not None and (saved / META_FILE).is_file():
            csv = self._run_csv
            self._run_job(lambda emit: _score_saved(saved, csv), self._scored)
        else:
            self.status.setText(narration.ending(result) + " No round finished, so there is no model to look at yet.")

    def _scored(self, result) -> None:
        if isinstance(result, Exception):
            self.status.setText(f"Could not score the data: {result}")
            return
        data, score, model, comparison = result
        self.score = (data, score)
        if comparison is not None:
            self.comparison.show_comparison(comparison)
            if self.settings is not None:  # the kept model is the first of Monitor's recent ones
                self.settings.remember(RECENT_MODELS, comparison["kept_model"])
        else:
            self.comparison.clear("This run has no comparison with training alone (it stopped before a round was trained).")
        failures = list(np.flatnonzero(data.status == BROKEN)) if data.status is not None else []
        self.anomaly.show_result(data.timestamps, score.scores, score.threshold, score.flags, score.events, failures, data.labels)
        summary = (
            figures_text(score.metrics) or f"{int(score.flags.sum()):,} rows flagged in {counted(len(score.events), 'event')}."
        )
        self.figures.setText(f"Model: {html.escape(model)}<br>{summary}")
        self.export.setEnabled(True)
        self.tabs.setCurrentWidget(self.anomalies_tab)
        ended = "Finished." if getattr(self.result, "complete", True) else narration.ending(self.result)
        self.status.setText(
            f"{ended} {counted(len(score.events), 'anomalous stretch', 'anomalous stretches')} flagged in your data."
        )
        self.sig_scored.emit()

    def _export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export every reading's anomaly score", f"{self._run_csv.stem}-scores.csv", "CSV (*.csv)"
        )
        if path:
            data, score = self.score
            write_scores_csv(Path(path), data, score)
            flagged = int(score.flags.sum())
            self.status.setText(
                f"Exported the scores of {data.rows:,} readings ({flagged:,} flagged, in "
                f"{counted(len(score.events), 'stretch', 'stretches')}) to {path}."
            )
            self.log.add(f"scores exported to {path}")


def _score_saved(folder: Path, csv: Path):
    """(data, score, model words, comparison or None) from the model the run saved, over the
    file it trained on."""
    detector = load_detector(folder)
    data = load_sensor_csv(csv, sensors=detector.sensors)
    words = describe_model(detector.info, "your own readings", "your own readings")
    try:
        comparison = json.loads((folder / COMPARISON_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        comparison = None
    return data, score_data(detector, data), words, comparison


def _probe(address, root, code):
    from ..fl.diagnostics import STEP_JOIN, CheckResult
    from ..fl.join_probe import probe_join_code

    ok, detail = probe_join_code(address, root, code)
    if ok:
        return CheckResult(STEP_JOIN, "ok", detail)
    return CheckResult(STEP_JOIN, "failed", detail, "check the join code, or ask the coordinator for a fresh invite")
