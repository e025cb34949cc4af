"""The plot widgets with real data: curves made once and updated in place, the anomaly view of a
real scored file, screenshots that show something (saved under /tmp/plots/ to look at)."""

import os
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QVBoxLayout, QWidget

from pumpfl_gui.core.dataset import load_sensor_csv
from pumpfl_gui.core.detector import Detector, score_data
from pumpfl_gui.core.simulator import generate
from pumpfl_gui.core.training import TrainSettings
from pumpfl_gui.gui.plots import AnomalyView, LossPlot, SensorPreview, apply_pending_updates, figures_text
from pumpfl_gui.gui.plots.anomaly_view import MAX_SPANS
from pumpfl_gui.gui.plots.loss_plot import SYMBOLS_BELOW
from pumpfl_gui.gui.plots.redraw_pacer import RedrawPacer
from pumpfl_gui.gui.theme import dark_palette

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SHOTS = Path("/tmp/plots")
SIZE = (900, 400)


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """A real facility file (simulated pump plant, 11,000 minutes) scored by a quickly
    trained detector."""
    folder = tmp_path_factory.mktemp("plots-data")
    generate(folder)
    data = load_sensor_csv(folder / "client_0.csv")
    detector = Detector.fit(data, settings=TrainSettings(epochs=1))
    return data, score_data(detector, data)


def failures_of(data) -> list[int]:
    return [int(r) for r in np.flatnonzero(data.status == "BROKEN")]


def dark(widget) -> None:
    widget.setPalette(dark_palette())


def screenshot(widget, name: str) -> np.ndarray:
    """Grab the widget at a realistic size, save it, and return its pixels (rows, cols, 4)."""
    widget.resize(*SIZE)
    widget.show()
    SHOTS.mkdir(parents=True, exist_ok=True)
    apply_pending_updates()
    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    assert image.save(str(SHOTS / f"{name}.png"))
    pixels = np.frombuffer(image.constBits(), np.uint8, image.sizeInBytes())
    pixels = pixels.reshape(image.height(), image.bytesPerLine() // 4, 4)[:, : image.width()]
    assert pixels.reshape(-1, 4)[:, :3].var() > 0, f"{name}: the screenshot is blank"
    return pixels


def legend_names(legend) -> list[str]:
    return [label.text for _sample, label in legend.items]


# ---- LossPlot --------------------------------------------------------------------------------


def test_loss_series_are_created_once_and_updated_in_place(qtbot):
    plot = LossPlot("Global model: loss per round")
    qtbot.addWidget(plot)
    plot.set_series("train (weighted)", [1], [0.5])
    train = plot.curve("train (weighted)")
    plot.set_series("eval (weighted)", [1], [0.6])
    rounds = [1.0, 2.0, 3.0]
    plot.set_series("train (weighted)", rounds, [0.5, 0.3, 0.2])
    plot.set_series("eval (weighted)", rounds, [0.6, None, 0.25])  # a round without eval loss: a gap

    assert plot.curve("train (weighted)") is train
    assert plot.series_names() == ["train (weighted)", "eval (weighted)"]
    assert legend_names(plot.legend) == ["train (weighted)", "eval (weighted)"]
    assert len(plot.plot.listDataItems()) == 2
    x, y = train.getData()
    assert x.tolist() == rounds and y.tolist() == [0.5, 0.3, 0.2]
    assert np.isnan(plot.curve("eval (weighted)").getData()[1][1])
    colours = {plot.curve(n).opts["pen"].color().name() for n in plot.series_names()}
    assert len(colours) == 2
    assert train.opts["symbol"] is not None  # few points: each round is marked

    xs = np.arange(SYMBOLS_BELOW + 10) / 3 + 1  # epochs within rounds: fractional rounds
    plot.set_series("train (weighted)", xs, np.exp(-xs))
    assert plot.curve("train (weighted)") is train  # reading the plot applies what is pending
    assert train.opts["symbol"] is None
    assert np.allclose(train.getData()[0], xs)
    screenshot(plot, "test_loss_light")


def test_loss_plot_clear_starts_over_and_follows_the_palette(qtbot):
    plot = LossPlot("Each facility: eval loss per round")
    qtbot.addWidget(plot)
    for i in range(5):
        rounds = np.arange(1, 11)
        plot.set_series(f"facility {i}", rounds, 0.3 * np.exp(-rounds / (2 + i)) + 0.02 * i)
    assert len(plot.series_names()) == 5
    assert len(legend_names(plot.legend)) == 5
    screenshot(plot, "test_loss_facilities_light")
    dark(plot)
    pixels = screenshot(plot, "test_loss_facilities_dark")
    corner = pixels[SIZE[1] - 3, 3, :3]  # outside the axes: the palette's Base colour
    assert corner.max() < 80

    plot.clear()
    assert plot.series_names() == [] and legend_names(plot.legend) == []
    assert plot.plot.listDataItems() == []
    plot.set_series("facility 9", [1, 2], [0.2, 0.1])
    assert plot.series_names() == ["facility 9"]
    assert legend_names(plot.legend) == ["facility 9"]


def test_plots_changed_together_are_redrawn_in_turn(qtbot):
    """Several plots updated at once (a round's results) get one event-loop turn each, so the
    window never spends several repaints in one turn; every update still lands."""
    apply_pending_updates()
    qtbot.wait(3 * RedrawPacer.TICK_MS)  # let an earlier test's pacer run out
    window = QWidget()
    qtbot.addWidget(window)
    layout = QVBoxLayout(window)
    plots = [LossPlot(f"plot {i}") for i in range(4)]
    for p in plots:
        layout.addWidget(p)
    window.resize(600, 800)
    window.show()
    qtbot.waitExposed(window)
    for i, p in enumerate(plots):
        p.set_series("eval", [1, 2, 3], [0.5, 0.4, 0.3 - i / 100])

    drawn = [len(p.plot.listDataItems()) for p in plots]
    assert drawn == [1, 0, 0, 0]  # the first at once, the rest wait their turn
    plots[2].setParent(None)
    plots[2].deleteLater()  # a plot that goes away while waiting is skipped, not an error
    # The pacer draws the waiting plots on its own ticks, nobody reading them back meanwhile.
    qtbot.waitUntil(lambda: all(len(p.plot.listDataItems()) == 1 for p in (plots[1], plots[3])), timeout=2000)
    for p in (plots[0], plots[1], plots[3]):
        y = p.plot.listDataItems()[0].getData()[1]
        assert y[-1] == pytest.approx(0.3 - plots.index(p) / 100)


# ---- AnomalyView -----------------------------------------------------------------------------


def test_anomaly_view_shows_a_real_result(qtbot, scored):
    data, result = scored
    failures = failures_of(data)
    assert failures and result.events and data.labels is not None  # the file has what this test checks
    view = AnomalyView()
    qtbot.addWidget(view)
    view.show_result(data.timestamps, result.scores, result.threshold, result.flags, result.events, failures, data.labels)

    assert view.log_check.isChecked()
    assert view.threshold_line.value() == pytest.approx(np.log10(result.threshold))
    view.log_check.setChecked(False)
    assert view.threshold_line.value() == pytest.approx(result.threshold)
    assert view.hist_threshold_line.value() == pytest.approx(result.threshold)
    screenshot(view, "test_anomaly_linear")
    view.log_check.setChecked(True)
    assert view.hist_threshold_line.value() == pytest.approx(np.log10(result.threshold))

    seconds = data.timestamps.astype("datetime64[ms]").astype(np.int64) / 1000.0
    x, y = view.error_curve.getOriginalDataset()  # getData() is the downsampled view
    assert np.array_equal(x, seconds)
    assert np.array_equal(y, result.scores, equal_nan=True)

    assert view.event_spans.count() == len(result.events)
    x0, x1 = view.event_spans.spans()
    first_start, first_end = result.events[0]
    assert x0[0] == seconds[first_start] and x1[0] == seconds[first_end]

    lines = view.failure_lines()
    assert [line.value() for line in lines] == [seconds[r] for r in failures]
    assert all(line.angle == 90 and line.isVisible() for line in lines)
    assert all(line.label.format == "failure" for line in lines)
    assert view.label_spans.count() >= 1

    _, counts = view.normal_bins.getOriginalDataset()  # getData() is log-mapped
    _, alarm_counts = view.alarm_bins.getOriginalDataset()
    real = np.concatenate((counts, alarm_counts))
    real = np.where(real < 1, 0, real)  # empty bins are drawn at the half-count floor
    finite = result.scores[np.isfinite(result.scores)]
    assert real.sum() == np.count_nonzero(finite > 0)

    assert "threshold" in legend_names(view.legend) and "failure (BROKEN)" in legend_names(view.legend)
    screenshot(view, "test_anomaly_light")
    dark(view)
    screenshot(view, "test_anomaly_dark")


def test_anomaly_view_caps_many_events_and_reuses_its_items(qtbot):
    rng = np.random.default_rng(3)
    rows = 77_000
    scores = rng.lognormal(-1, 1, rows)
    scores[:40] = np.nan  # no score before the first full window
    starts = np.sort(rng.choice(np.arange(100, rows - 10, 20), 2_000, replace=False))
    events = [(int(s), int(s) + 3) for s in starts]
    flags = np.zeros(rows, bool)
    for s, e in events:
        flags[s:e] = True
    view = AnomalyView()
    qtbot.addWidget(view)
    view.show_result(None, scores, 1.5, flags, events, [5_000, 60_000], None)

    spans = view.event_spans
    assert spans.count() == MAX_SPANS
    x0, x1 = spans.spans()
    assert x0[0] == events[0][0] and x1[-1] == events[-1][1]  # rows on the axis without times
    assert np.all(x0[1:] >= x1[:-1])  # merged neighbours, never overlapping
    assert view.label_spans.count() == 0
    assert "labelled anomaly" not in legend_names(view.legend)
    pool = view.failure_lines()
    assert [line.value() for line in pool] == [5_000, 60_000]
    screenshot(view, "test_anomaly_many_events")

    view.show_result(None, scores[:1_000], 1.5, flags[:1_000], events[:3], [700], None)
    assert view.event_spans is spans and spans.count() == 3
    assert view.failure_lines() == pool[:1] and pool[1].isVisible() is False
    assert view.failure_lines()[0].value() == 700


def test_a_long_file_is_drawn_by_its_envelope_and_keeps_its_peaks(qtbot, monkeypatch):
    import pumpfl_gui.gui.plots.anomaly_view as anomaly_view

    monkeypatch.setattr(anomaly_view, "MAX_CURVE_POINTS", 1_000)
    rng = np.random.default_rng(4)
    scores = rng.lognormal(-1, 0.3, 50_000)
    scores[:40] = np.nan
    scores[31_337] = 9.0  # one alarm-worthy spike among 50,000 rows
    view = AnomalyView()
    qtbot.addWidget(view)
    view.show_result(None, scores, 1.5, scores > 1.5, [(31_337, 31_338)], [], None)
    x, y = view.error_curve.xData, view.error_curve.yData  # as given, before the log scale
    assert len(x) <= 1_000 and np.nanmax(y) == 9.0
    assert view.event_spans.spans()[0].tolist() == [31_337]  # the band at its own row, not a thinned one


def test_anomaly_view_handles_nothing_to_show(qtbot):
    view = AnomalyView()
    qtbot.addWidget(view)
    view.clear()
    assert view.event_spans.count() == 0 and view.failure_lines() == []
    view.show_result(None, np.full(100, np.nan), 0.1, np.zeros(100, bool), [], [], np.zeros(100))
    assert view.event_spans.count() == 0
    label_x = [label.pos().x() for _sample, label in view.legend.items]
    assert label_x == sorted(set(label_x))  # entries side by side, not drawn over each other
    screenshot(view, "test_anomaly_empty")


# ---- SensorPreview ---------------------------------------------------------------------------


def test_sensor_preview_normalises_each_sensor(qtbot, scored):
    data, _ = scored
    preview = SensorPreview()
    qtbot.addWidget(preview)
    names = [data.sensors[i] for i in (0, 4, 10, 20)]
    cols = [data.sensors.index(n) for n in names]
    preview.show(data.timestamps, data.values[:, cols], names)

    curves = preview.shown_curves()
    assert legend_names(preview.legend) == names
    for curve, _col in zip(curves, cols):
        _, z = curve.getOriginalDataset()
        assert abs(np.nanmean(z)) < 1e-6 and np.nanstd(z) == pytest.approx(1.0, abs=1e-3)
    raw = data.values[:, cols]
    assert np.ptp(raw.mean(axis=0)) > 10  # very different magnitudes share one axis
    screenshot(preview, "test_sensors_light")
    dark(preview)
    screenshot(preview, "test_sensors_dark")

    preview.show(None, data.values[:500, cols[:2]], names[:2])  # fewer sensors, no time column
    assert preview.shown_curves() == curves[:2]
    assert not curves[2].isVisible() and legend_names(preview.legend) == names[:2]
    assert preview.shown_curves()[0].getOriginalDataset()[0].tolist() == list(range(500))


def test_sensor_preview_show_without_arguments_is_qwidget_show(qtbot):
    preview = SensorPreview()
    qtbot.addWidget(preview)
    preview.show()
    assert preview.isVisible()
    flat = np.column_stack([np.full(50, 7.0), np.arange(50.0)])
    preview.show(None, flat, ["stuck sensor", "ramp"])
    assert np.all(preview.shown_curves()[0].getOriginalDataset()[1] == 0)  # a constant sensor sits at 0


# ---- figures ---------------------------------------------------------------------------------


def test_figures_text_from_real_metrics(scored):
    _, result = scored
    text = figures_text(result.metrics)
    m = result.metrics
    assert f"{m['failures']['caught']} of {m['failures']['failures']}" in text
    assert "per day" in text and "Precision" in text and "recall" in text
    assert text.count("<br>") >= 3


def test_figures_text_missing_values():
    metrics = {
        "failures": {
            "failures": 2,
            "caught": 0,
            "per_failure": [],
            "median_lead_hours": None,
            "false_alarms": 0,
            "watched_days": 0.0,
            "false_alarms_per_day": None,
        }
    }
    text = figures_text(metrics)
    assert "0 of 2" in text and "–" in text
    assert figures_text({}) == ""


@pytest.mark.parametrize("caught,heading", [(1, "<b>Warning time:</b>"), (2, "<b>Median warning time:</b>")])
def test_one_caught_failure_has_a_warning_time_several_a_median(caught, heading):
    failures = {"failures": 2, "caught": caught, "median_lead_hours": 3.0, "false_alarms": 0, "watched_days": 1.0}
    text = figures_text({"failures": {**failures, "false_alarms_per_day": 0.0}})
    assert heading in text and "3.0 h" in text
    assert ("Median" in text) == (caught > 1)


def test_advice_that_asks_nothing_is_not_headed_what_to_do(qtbot):
    from pumpfl_gui.gui.widgets import CheckList

    checks = CheckList()
    qtbot.addWidget(checks)
    calm = checks.add_result("warning", "Ping", "no reply", "Nothing to do: the next step tests the connection itself.")
    asked = checks.add_result("failed", "TCP", "refused", "start the server")
    assert calm.text(2) == "no reply\nNothing to do: the next step tests the connection itself."
    assert asked.text(2) == "refused\nWhat to do: start the server"
