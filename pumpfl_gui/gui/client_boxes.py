"""The client page's boxes: your data, the server, and the run view with its tabs (gui).

Like a Qt Designer form's ``setupUi``, each builder makes its widgets as attributes of the page
(``page.source``, ``page.address``, ``page.anomaly``…), which the page, its tests and the demo
use by name; the page gives them their behaviour.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..core.paths import DEFAULT_FACILITIES
from ..fl.choices import INSECURE_CLIENT_LINE
from ..fl.narration import capitalised
from .comparison_view import ComparisonView
from .plots import AnomalyView, LossPlot, SensorPreview
from .theme import coloured
from .widgets import CheckList, LogView, row


def data_box(page: QWidget) -> QGroupBox:
    """A default facility or a CSV file of one's own, and what it holds (its sensors' preview is
    the run view's first tab)."""
    box = QGroupBox("Your data")
    page.source = QComboBox()
    page.source.addItems([f"Default facility {i}" for i in range(DEFAULT_FACILITIES)] + ["A CSV file of your own…"])
    page.pick = QPushButton("Choose &file…")
    page.stop_reading = QPushButton("Stop reading")  # shown while a file is read (a long one takes a while)
    page.stop_reading.hide()
    page.data_info = QLabel("No data loaded.")
    page.data_info.setWordWrap(True)
    page.data_info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    page.preview = SensorPreview()  # shown in the run view's "Your data" tab: the left column stays short
    page.preview.setMinimumHeight(160)
    layout = QVBoxLayout(box)
    layout.addLayout(row(page.source, page.pick, None))
    layout.addWidget(page.data_info)
    layout.addLayout(row(page.stop_reading, None))
    return box


def server_box(page: QWidget) -> QGroupBox:
    """The invite or address, the join code, the insecure switch, Test connection and Forget.

    The connection test's results (``page.checks``) show in the run view's last tab.
    """
    box = QGroupBox("Server")
    page.address = QLineEdit(placeholderText="paste the invite, or type host:port")
    page.join_code = QLineEdit(placeholderText="join code (already in an invite)")
    page.insecure = QCheckBox("Insecure server (no encryption)")
    warning = "⚠ " + html.escape(capitalised(INSECURE_CLIENT_LINE)) + "."
    page.insecure_warning = QLabel(coloured(warning, "warning", page))
    page.insecure_warning.setWordWrap(True)
    page.insecure_warning.hide()
    page.test = QPushButton("Test &connection")
    page.forget = QPushButton("Forget this ser&ver…")
    page.forget.setToolTip("Stop trusting the certificate this computer remembered for the server in the address field")
    page.forget.setEnabled(False)
    page.checks = CheckList()
    page.checks.setMinimumHeight(150)
    form = QFormLayout(box)
    form.addRow("Invite or address", page.address)
    form.addRow("Join code", page.join_code)
    form.addRow(page.insecure)
    form.addRow(page.insecure_warning)
    form.addRow(row(page.test, page.forget, None))
    return box


def run_view(page: QWidget) -> QWidget:
    """Status, the server's strategy, progress, and the tabs: Your data (a preview of its
    sensors), Training (loss and log), Anomalies (the view, its figures, the export), Alone vs
    federated, Connection test."""
    page.status = QLabel("Not connected.")
    page.status.setWordWrap(True)
    page.strategy = QLabel()  # what the server chose, once the first round says
    page.strategy.hide()
    page.progress = QProgressBar()
    page.progress.setFormat("%v of %m rounds done")
    page.loss_plot = LossPlot("This facility: loss", x_label="round")
    page.log = LogView()
    page.anomaly = AnomalyView()
    page.figures = QLabel("Train first: the anomaly view appears after the last round.")
    page.figures.setWordWrap(True)
    page.figures.setTextFormat(Qt.TextFormat.RichText)
    page.export = QPushButton("&Export scores as CSV…")
    page.export.setToolTip("Every reading's time, anomaly score, threshold, whether it was flagged and its stretch number")
    page.export.setEnabled(False)
    training = page.training_tab = QSplitter(Qt.Orientation.Vertical)
    training.addWidget(page.loss_plot)
    training.addWidget(page.log)
    anomalies = page.anomalies_tab = QWidget()
    al = QVBoxLayout(anomalies)
    al.addWidget(page.anomaly, 1)
    al.addWidget(page.figures)
    al.addLayout(row(page.export, None))
    page.tabs = QTabWidget()
    page.tabs.addTab(page.preview, "Your data")
    page.tabs.addTab(training, "Training")
    page.tabs.addTab(anomalies, "Anomalies")
    page.comparison = ComparisonView()
    page.tabs.addTab(page.comparison, "Alone vs federated")
    page.tabs.addTab(page.checks, "Connection test")
    right = QVBoxLayout()
    right.addWidget(page.status)
    right.addWidget(page.strategy)
    right.addWidget(page.progress)
    right.addWidget(page.tabs, 1)
    right_w = QWidget()
    right_w.setLayout(right)
    return right_w
