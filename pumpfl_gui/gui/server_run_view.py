"""The server page's run view: status, progress, facilities table, loss curves, log (gui).

Like a Qt Designer form's ``setupUi``, the builder makes the view's widgets as attributes of the
page (``page.status``, ``page.table``, ``page.loss_plot``…); the page fills them as events come.
Its outputs live here too: the history's CSV (what the view shows) and Save global model.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFileDialog,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from ..core.csv_cells import safe_cell
from ..fl.choices import DP_LINE
from ..fl.narration import capitalised
from .plots import LossPlot
from .widgets import LogView, row

COLUMNS = ["Facility", "Windows", "State", "Train loss", "Eval loss", "Rounds"]
CURVES_SHOWN = 8  # facilities drawn one curve each; beyond, their median and range


def run_view(page: QWidget) -> QWidget:
    """Status and privacy lines, progress, the facilities table, the two loss plots side by side,
    the log, and the buttons that keep the run's model and history."""
    page.status = QLabel("Not running.")
    page.status.setWordWrap(True)
    page.privacy = QLabel()
    page.privacy.setToolTip(capitalised(DP_LINE))
    page.privacy.hide()
    page.progress = QProgressBar()
    page.progress.setFormat("%v of %m rounds done")
    page.table = QTableWidget(0, len(COLUMNS))
    page.table.setHorizontalHeaderLabels(COLUMNS)
    page.table.horizontalHeaderItem(COLUMNS.index("Windows")).setToolTip(
        "Training windows each facility holds; every round trains on a sample of them"
    )
    header = page.table.horizontalHeader()
    for col in range(len(COLUMNS)):  # the names take the room; the figures just what they need
        header.setSectionResizeMode(col, QHeaderView.ResizeMode.Stretch if col == 0 else QHeaderView.ResizeMode.ResizeToContents)
    page.table.verticalHeader().setVisible(False)
    page.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    page.loss_plot = LossPlot("Global model: loss")
    page.client_plot = LossPlot("Each facility: eval loss")
    page.log = LogView()
    page.save_model = QPushButton("Save global &model…")
    page.export = QPushButton("&Export history as CSV…")
    page.save_model.setEnabled(False)
    page.export.setEnabled(False)
    plots = QSplitter(Qt.Orientation.Horizontal)
    plots.addWidget(page.loss_plot)
    plots.addWidget(page.client_plot)
    right = QSplitter(Qt.Orientation.Vertical)
    top = QWidget()
    tl = QVBoxLayout(top)
    tl.setContentsMargins(0, 0, 0, 0)
    tl.addWidget(page.status)
    tl.addWidget(page.privacy)
    tl.addWidget(page.progress)
    tl.addWidget(page.table)
    right.addWidget(top)
    right.addWidget(plots)
    right.addWidget(page.log)
    right.setSizes([220, 320, 160])
    rlayout = QVBoxLayout()
    rlayout.addWidget(right)
    rlayout.addLayout(row(page.save_model, page.export, None))
    right_w = QWidget()
    right_w.setLayout(rlayout)
    return right_w


def export_history_csv(path: Path, history: list) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "round",
                "facility",
                "samples",
                "train_loss",
                "eval_loss",
                "round_train_loss",
                "round_eval_loss",
                "bytes_sent",
                "bytes_received",
                "seconds",
                "epsilon",
            ]
        )
        for h in history:
            for name, c in sorted(h.per_client.items()):
                w.writerow(
                    [
                        h.round,
                        safe_cell(name),
                        c.get("samples", ""),
                        c.get("train_loss", ""),
                        c.get("eval_loss", ""),
                        h.train_loss,
                        h.eval_loss,
                        h.bytes_sent,
                        h.bytes_received,
                        h.seconds,
                        "" if h.epsilon is None else h.epsilon,
                    ]
                )


def save_global_model(page) -> None:
    """Save the run's global model as a folder the person names (a model is a folder: weights
    and JSON), and say where in the status line."""
    path, _ = QFileDialog.getSaveFileName(
        page, "Save the global model as a folder", str(Path.home() / "pumpfl-global-model"), "Model folder (*)"
    )
    if not path:
        return
    dest = Path(path)
    if dest.exists() and (not dest.is_dir() or (any(dest.iterdir()) and not (dest / "model.json").is_file())):
        QMessageBox.warning(page, "Not saved", f"{dest} already holds other files; choose a new folder name.")
        return
    try:
        shutil.copytree(page.out_dir / "global_model", dest, dirs_exist_ok=True)
    except OSError as exc:
        QMessageBox.warning(page, "Not saved", f"Could not save the global model in {dest}: {exc.strerror or exc}")
        return
    page.status.setText(
        f"Saved the global model in the folder {dest}. It is not calibrated to any facility yet: "
        "each facility's own saved model is, and opens in Monitor."
    )
    page.log.add(f"global model saved to {dest}")


def export_history(page) -> None:
    path, _ = QFileDialog.getSaveFileName(page, "Export history", "pumpfl-history.csv", "CSV (*.csv)")
    if path:
        export_history_csv(Path(path), page.history)
        page.status.setText(f"Exported the history of {len(page.history)} rounds to {path}.")
        page.log.add(f"history exported to {path}")


def show_spread(plot, per_facility: dict[str, tuple[list, list]]) -> None:
    """More facilities than curves anyone can tell apart: each round's median eval loss over the
    facilities and the best and worst of them, as three curves (the table keeps each one)."""
    rounds = sorted({x for xs, _ in per_facility.values() for x in xs})
    by_round = {r: [] for r in rounds}
    for xs, ys in per_facility.values():
        for x, y in zip(xs, ys):
            by_round[x].append(y)
    if set(plot.series_names()) - set(SPREAD):
        plot.clear()  # the curves of the first few facilities make way for the summary
    for name, pick in zip(SPREAD, (np.median, np.min, np.max)):
        plot.set_series(name, rounds, [float(pick(by_round[r])) for r in rounds])


SPREAD = ("median facility", "best", "worst")
