"""The server page's settings boxes: training, how updates are combined, differential privacy (gui).

Like a Qt Designer form's ``setupUi``, each builder makes its box's widgets as attributes of the
page (``page.rounds``, ``page.dp_noise``…), which the page, its tests and the demo use by name.
The same widgets are read into one :class:`FederationSettings` and remembered between sessions
here; fl/choices.py says what each choice does.
"""

from __future__ import annotations

import html

from PySide6.QtCore import QEvent
from PySide6.QtGui import QDoubleValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..fl.choices import DP_LINE, DP_STRATEGIES, SHARED_SCALING_LINE, STRATEGIES
from ..fl.limits import BATCH, FACILITIES
from ..fl.narration import capitalised
from ..fl.protocol import FederationSettings
from .theme import coloured


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


def align_labels(*boxes: QGroupBox) -> None:
    """One label column for all the boxes, so their fields line up."""
    forms = [box.layout() for box in boxes]
    labels = [
        item.widget()
        for f in forms
        for i in range(f.rowCount())
        if (item := f.itemAt(i, QFormLayout.ItemRole.LabelRole)) is not None
    ]
    width = max(label.sizeHint().width() for label in labels)
    for label in labels:
        label.setMinimumWidth(width)


def dp_refusal(strategy: str) -> str:
    """Why differential privacy is off with this strategy, in fl's own words ("" where it works)."""
    try:
        FederationSettings(strategy=strategy, min_clients=3, dp_noise_multiplier=1.0)
    except ValueError as exc:
        return capitalised(str(exc))
    return ""


def training_box(page: QWidget) -> QGroupBox:
    """Rounds, facilities, epochs, learning rate, batch, waits, and the insecure switch."""
    box = QGroupBox("Training settings")
    page.rounds = QSpinBox(minimum=1, maximum=1000, value=10)
    page.min_clients = QSpinBox(minimum=FACILITIES[0], maximum=FACILITIES[1], value=2)
    page.epochs = QSpinBox(minimum=1, maximum=100, value=3)
    page.lr = QDoubleSpinBox(decimals=5, minimum=0.00001, maximum=1.0, singleStep=0.0005, value=0.001)
    page.batch = QSpinBox(minimum=BATCH[0], maximum=BATCH[1], value=256)
    page.timeout = QSpinBox(minimum=5, maximum=86400, value=600, suffix=" s")
    page.timeout.setToolTip(
        "How long a round waits for each facility's answer. A facility that disconnects "
        "or stops answering is out of the round within seconds anyway."
    )
    page.join_wait = QSpinBox(minimum=5, maximum=7 * 86400, value=3600, suffix=" s")
    page.join_wait.setToolTip(
        "How long the run waits for the minimum of facilities: at the start, and paused "
        "whenever too few are left. Then it ends, and can be resumed."
    )
    page.insecure = QCheckBox("Insecure: no encryption, no join code (trusted networks only)")
    form = QFormLayout(box)
    form.addRow("Rounds", page.rounds)
    form.addRow("Minimum facilities", page.min_clients)
    form.addRow("Local epochs per round", page.epochs)
    form.addRow("Learning rate", page.lr)
    form.addRow("Batch size", page.batch)
    form.addRow("Round timeout", page.timeout)
    form.addRow("Wait for facilities", page.join_wait)
    form.addRow(page.insecure)
    page.insecure_warning = QLabel()
    page.insecure_warning.setWordWrap(True)
    page.insecure_warning.hide()
    form.addRow(page.insecure_warning)
    return box


def strategy_box(page: QWidget) -> QGroupBox:
    """The strategy, its line, its own setting (only the chosen one's is shown), shared scaling."""
    box = QGroupBox("How updates are combined")
    page.strategy = QComboBox()
    for s in STRATEGIES.values():
        page.strategy.addItem(s.title, s.name)
    page.strategy_line = Hint()
    defaults = FederationSettings()
    page.strategy_settings = {
        "proximal_mu": QDoubleSpinBox(decimals=4, minimum=0.0, maximum=10.0, singleStep=0.01, value=defaults.proximal_mu),
        "server_lr": QDoubleSpinBox(decimals=4, minimum=0.0001, maximum=1.0, singleStep=0.005, value=defaults.server_lr),
        "trim_fraction": QDoubleSpinBox(decimals=2, minimum=0.0, maximum=0.45, singleStep=0.05, value=defaults.trim_fraction),
    }
    page.shared_scaling = QCheckBox("Agree scaling and threshold across facilities")
    page.shared_scaling.setToolTip(capitalised(SHARED_SCALING_LINE))
    page.strategy_form = QFormLayout(box)
    page.strategy_form.addRow("Strategy", page.strategy)
    page.strategy_form.addRow(page.strategy_line)
    for s in STRATEGIES.values():
        if s.setting:
            page.strategy_form.addRow(capitalised(s.setting_label), page.strategy_settings[s.setting])
    page.strategy_form.addRow(page.shared_scaling)
    page.strategy_form.addRow(Hint(capitalised(SHARED_SCALING_LINE)))
    return box


def privacy_box(page: QWidget) -> QGroupBox:
    """Differential privacy, ticked on or off as a whole (``page.dp`` is the box itself)."""
    defaults = FederationSettings()
    page.dp = QGroupBox("Differential privacy", checkable=True, checked=False)
    page.dp_noise = QDoubleSpinBox(decimals=2, minimum=0.01, maximum=100.0, singleStep=0.1, value=1.0)
    page.dp_clip = QDoubleSpinBox(decimals=3, minimum=0.001, maximum=1000.0, singleStep=0.1, value=defaults.dp_clipping_norm)
    page.dp_delta = QLineEdit(f"{defaults.dp_delta:g}")
    page.dp_delta.setValidator(QDoubleValidator(0.0, 1.0, 12))
    form = QFormLayout(page.dp)
    form.addRow("Noise multiplier", page.dp_noise)
    form.addRow("Clipping norm", page.dp_clip)
    form.addRow("δ (delta)", page.dp_delta)
    page.dp_line = Hint()  # what it does, or why it is off with the chosen strategy
    form.addRow(page.dp_line)
    return page.dp


def settings_area(page: QWidget, *boxes: QGroupBox) -> QWidget:
    """The boxes and, below them, what measurement says against the choices (fl/choices.caution).

    Disabled as one while the server runs; the boxes inside keep their own state.
    """
    page.caution = QLabel()  # in the warning colour, shown only when there is a caution
    page.caution.setWordWrap(True)
    page.caution.hide()
    page.settings_area = QWidget()
    layout = QVBoxLayout(page.settings_area)
    layout.setContentsMargins(0, 0, 0, 0)
    for w in (*boxes, page.caution):
        layout.addWidget(w)
    return page.settings_area


def federation_settings(page: QWidget) -> FederationSettings:
    """The settings boxes as one FederationSettings (ValueError for a δ that is no number)."""
    strategy = page.strategy.currentData()
    dp_on = page.dp.isChecked() and strategy in DP_STRATEGIES
    try:
        delta = float(page.dp_delta.text()) if dp_on else 1e-5
    except ValueError:
        raise ValueError("δ must be a number between 0 and 1, such as 1e-5") from None
    return FederationSettings(
        rounds=page.rounds.value(),
        min_clients=page.min_clients.value(),
        local_epochs=page.epochs.value(),
        lr=page.lr.value(),
        batch_size=page.batch.value(),
        round_timeout=float(page.timeout.value()),
        join_timeout=float(page.join_wait.value()),
        strategy=strategy,
        **{name: spin.value() for name, spin in page.strategy_settings.items()},
        dp_noise_multiplier=page.dp_noise.value() if dp_on else None,
        dp_clipping_norm=page.dp_clip.value(),
        dp_delta=delta,
        shared_scaling=page.shared_scaling.isChecked(),
    )


def load_choices(page: QWidget, settings) -> None:
    """Fill the settings boxes (and the port and address in the invite) from the app's settings."""
    page.port.setValue(settings.get("server/port", 8080, int))
    page.rounds.setValue(settings.get("server/rounds", 10, int))
    page.min_clients.setValue(settings.get("server/min_clients", 2, int))
    page.advertise.setText(settings.get("server/advertise", "", str))
    page.strategy.setCurrentIndex(max(0, page.strategy.findData(settings.get("server/strategy", "fedavg", str))))
    for name, spin in page.strategy_settings.items():
        spin.setValue(settings.get(f"server/{name}", spin.value(), float))
    page.shared_scaling.setChecked(settings.get("server/shared_scaling", False, bool))
    page.dp.setChecked(settings.get("server/dp", False, bool))
    page.dp_noise.setValue(settings.get("server/dp_noise_multiplier", 1.0, float))
    page.dp_clip.setValue(settings.get("server/dp_clipping_norm", 1.0, float))
    page.dp_delta.setText(settings.get("server/dp_delta", "1e-05", str))


def save_choices(page: QWidget, settings) -> None:
    """Remember what :func:`load_choices` fills in, for the next session."""
    settings.set("server/port", page.port.value())
    settings.set("server/rounds", page.rounds.value())
    settings.set("server/min_clients", page.min_clients.value())
    settings.set("server/advertise", page.advertise.text().strip())
    settings.set("server/strategy", page.strategy.currentData())
    for name, spin in page.strategy_settings.items():
        settings.set(f"server/{name}", spin.value())
    settings.set("server/shared_scaling", page.shared_scaling.isChecked())
    settings.set("server/dp", page.dp.isChecked())
    settings.set("server/dp_noise_multiplier", page.dp_noise.value())
    settings.set("server/dp_clipping_norm", page.dp_clip.value())
    settings.set("server/dp_delta", page.dp_delta.text().strip())


def show_strategy(page: QWidget) -> None:
    """The chosen strategy's line and its own setting; differential privacy only where it holds."""
    chosen = STRATEGIES[page.strategy.currentData()]
    page.strategy_line.set_hint(capitalised(chosen.line))
    for name, spin in page.strategy_settings.items():
        page.strategy_form.setRowVisible(spin, name == chosen.setting)
    refusal = dp_refusal(chosen.name)
    page.dp.setEnabled(not refusal)
    page.dp.setToolTip(refusal)
    page.dp_line.set_hint(refusal or capitalised(DP_LINE))
