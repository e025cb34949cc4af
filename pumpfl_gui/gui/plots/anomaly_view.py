"""A facility's scored data: the anomaly score over time beside a histogram of it (gui layer)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from ...core.wording import counted
from .envelope import envelope
from .styling import (
    ALARM_RED,
    FAILURE_MAGENTA,
    LABEL_AMBER,
    SERIES_COLOURS,
    PaletteAware,
    PlainLogAxis,
    TimeOrRowAxis,
    fit_legend,
    palette_colours,
    prepare_plot,
    style_legend,
    style_plot,
    translucent,
    x_values,
)

log = logging.getLogger(__name__)

MAX_SPANS = 500  # bands drawn per kind; beyond this, neighbouring events are merged for drawing
MAX_FAILURE_LINES = 100
HISTOGRAM_BINS = 60
MAX_CURVE_POINTS = 400_000  # a longer file's scores are drawn as their envelope: each stretch's low and high


class _Spans(pg.GraphicsObject):
    """Vertical bands over the full height of the view, all drawn in one paint call.

    Thousands of LinearRegionItems (each two draggable lines) would make panning sluggish; one
    item that paints rectangles stays fast. Bands narrower than a pixel are widened to stay visible.
    """

    def __init__(self, colour: QColor) -> None:
        super().__init__()
        self._brush = pg.mkBrush(colour)
        self._x0 = np.empty(0)
        self._x1 = np.empty(0)

    def set_spans(self, x0: np.ndarray, x1: np.ndarray) -> None:
        self.prepareGeometryChange()
        self._x0 = np.asarray(x0, dtype=np.float64)
        self._x1 = np.asarray(x1, dtype=np.float64)
        self.update()

    def count(self) -> int:
        return len(self._x0)

    def spans(self) -> tuple[np.ndarray, np.ndarray]:
        return self._x0.copy(), self._x1.copy()

    def viewRangeChanged(self) -> None:  # noqa: N802 (pyqtgraph's name)
        self.prepareGeometryChange()  # the bands' height follows the view

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt's name)
        vb = self.getViewBox()
        if vb is None or not len(self._x0):
            return QRectF()
        (_, _), (y0, y1) = vb.viewRange()
        pad = 2 * (self.pixelWidth() or 0.0)
        left, right = float(self._x0.min()) - pad, float(self._x1.max()) + pad
        return QRectF(left, y0, right - left, y1 - y0)

    def paint(self, painter, *args) -> None:
        vb = self.getViewBox()
        if vb is None or not len(self._x0):
            return
        (vx0, vx1), (y0, y1) = vb.viewRange()
        shown = (self._x1 >= vx0) & (self._x0 <= vx1)
        if not shown.any():
            return
        min_width = 1.5 * (self.pixelWidth() or 0.0)
        x0 = self._x0[shown]
        width = np.maximum(self._x1[shown] - x0, min_width)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(self._brush)
        painter.drawRects([QRectF(a, y0, w, y1 - y0) for a, w in zip(x0.tolist(), width.tolist())])


class _Swatch(pg.ItemSample):
    """Legend sample for things that are not curves (bands, marker lines); a click hides them."""

    def __init__(self, kind: str, colour: QColor, targets: Callable[[], list]) -> None:
        super().__init__(item=None)
        self._kind = kind  # "band" | "hline" | "vline"
        self._colour = QColor(colour)
        self._targets = targets
        self._shown = True

    def paint(self, painter, *args) -> None:
        colour = QColor(self._colour)
        if not self._shown:
            colour.setAlpha(40)
        if self._kind == "band":
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(pg.mkBrush(colour))
            painter.drawRect(QRectF(3, 3, 14, 14))
        elif self._kind == "hline":
            painter.setPen(pg.mkPen(colour, width=2, style=Qt.PenStyle.DashLine))
            painter.drawLine(0, 10, 20, 10)
        else:
            painter.setPen(pg.mkPen(colour, width=2))
            painter.drawLine(10, 1, 10, 19)

    def mouseClickEvent(self, event) -> None:  # noqa: N802 (pyqtgraph's name)
        if event.button() == Qt.MouseButton.LeftButton:
            self._shown = not self._shown
            for item in self._targets():
                item.setVisible(self._shown)
            self.update()
        event.accept()


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of runs of True, ends exclusive."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _cap_spans(starts: np.ndarray, ends: np.ndarray, cap: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``cap`` spans covering the same rows: close the narrowest gaps between neighbours."""
    if len(starts) <= cap:
        return starts, ends
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], ends[order]
    gaps = starts[1:] - ends[:-1]
    kept = np.sort(np.argpartition(gaps, -(cap - 1))[-(cap - 1) :])  # the widest cap-1 gaps stay open
    return np.concatenate(([starts[0]], starts[kept + 1])), np.concatenate((ends[kept], [ends[-1]]))


def _histogram_edges(values: np.ndarray, threshold: float, log: bool, bins: int = HISTOGRAM_BINS) -> np.ndarray:
    """Equal bins (in log or linear error) spanning ``values``, with the threshold on a bin edge.

    Linear bins stop at the 99.9 % quantile (or just past the threshold) so one huge error does
    not squeeze every other bar into the first bin; larger values are counted in the last bin.
    """
    if log:
        lo, hi = np.log10(values.min()), np.log10(values.max())
        t = np.log10(threshold) if threshold > 0 else lo
    else:
        lo = 0.0
        hi = max(float(np.quantile(values, 0.999)), 1.2 * threshold)
        t = threshold
    if not hi > lo:
        hi = lo + 1.0
    step = (hi - lo) / bins
    k = np.arange(np.floor((lo - t) / step), np.ceil((hi - t) / step) + 1)
    edges = t + k * step
    if not log:
        edges = edges[edges >= 0] if (edges >= 0).sum() >= 2 else edges
    return 10.0**edges if log else edges


class AnomalyView(PaletteAware):
    """A facility's scored data: the error over time (threshold, alarms, known anomalies,
    failures) beside a histogram of the errors. Feed it with :meth:`show_result`.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._x = np.empty(0)  # epoch seconds or row numbers, one per row
        self._threshold = float("nan")
        self._positive = np.empty(0)  # finite, positive errors (what the histogram counts)
        self._events_total = 0

        self.log_check = QCheckBox("Logarithmic score scale")
        self.log_check.setToolTip("Errors span several orders of magnitude; a log scale shows small and large ones together.")
        self.log_check.setChecked(True)
        self.summary = QLabel()
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        self.summary.setWordWrap(True)  # a narrow view wraps it rather than grow past the screen
        top = QHBoxLayout()
        top.setContentsMargins(6, 0, 6, 0)
        top.addWidget(self.summary, 1)
        top.addWidget(self.log_check)

        self._canvas = pg.GraphicsLayoutWidget()
        self._canvas.setMinimumSize(480, 240)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(top)
        layout.addWidget(self._canvas, 1)

        self.legend = pg.LegendItem(colCount=5, horSpacing=14, verSpacing=-4)
        self._canvas.addItem(self.legend, row=0, col=0, colspan=2)
        self._canvas.ci.layout.setAlignment(self.legend, Qt.AlignmentFlag.AlignHCenter)
        self._axis = TimeOrRowAxis()
        self.timeline: pg.PlotItem = self._canvas.addPlot(
            row=1, col=0, axisItems={"bottom": self._axis, "left": PlainLogAxis("left")}
        )
        self.histogram: pg.PlotItem = self._canvas.addPlot(
            row=1, col=1, axisItems={"bottom": PlainLogAxis("bottom"), "left": PlainLogAxis("left")}
        )
        self._canvas.ci.layout.setColumnStretchFactor(0, 3)
        self._canvas.ci.layout.setColumnStretchFactor(1, 1)
        self._canvas.ci.layout.setHorizontalSpacing(18)  # keep the histogram's axis title off the timeline

        tl = self.timeline
        tl.setLabel("left", "anomaly score (spreads off normal)")
        tl.setLabel("bottom", "row (reading number)")
        prepare_plot(tl)
        self.label_spans = _Spans(translucent(LABEL_AMBER, 70))
        self.label_spans.setZValue(-20)
        tl.addItem(self.label_spans, ignoreBounds=True)
        self.event_spans = _Spans(translucent(ALARM_RED, 80))
        self.event_spans.setZValue(-10)
        tl.addItem(self.event_spans, ignoreBounds=True)
        self.error_curve: pg.PlotDataItem = tl.plot(pen=pg.mkPen(SERIES_COLOURS[0], width=1), connect="finite")
        self.threshold_line = pg.InfiniteLine(
            angle=0,
            movable=False,
            pen=pg.mkPen(ALARM_RED, width=2, style=Qt.PenStyle.DashLine),
            label="threshold",
            labelOpts={"position": 0.98, "anchors": [(1, 1), (1, 0)], "color": ALARM_RED},
        )
        self.threshold_line.setZValue(10)
        tl.addItem(self.threshold_line, ignoreBounds=True)
        self._failure_pool: list[pg.InfiniteLine] = []
        self._failure_count = 0

        hg = self.histogram
        hg.setLabel("left", "readings (count)")
        hg.setLabel("bottom", "anomaly score")
        hg.setLogMode(x=True, y=True)  # counts, too, span orders of magnitude (the alarm tail is small)
        prepare_plot(hg, long_series=False)
        hg.setMouseEnabled(y=False)
        self._fill_floor = np.log10(0.5)  # bars rise from half a count, so a bin of 1 shows
        self.normal_bins: pg.PlotDataItem = hg.plot(
            stepMode="center",
            fillLevel=self._fill_floor,
            pen=pg.mkPen(SERIES_COLOURS[0], width=1),
            brush=translucent(SERIES_COLOURS[0], 120),
        )
        self.alarm_bins: pg.PlotDataItem = hg.plot(
            stepMode="center", fillLevel=self._fill_floor, pen=pg.mkPen(ALARM_RED, width=1), brush=translucent(ALARM_RED, 140)
        )
        self.hist_threshold_line = pg.InfiniteLine(
            angle=90, movable=False, pen=pg.mkPen(ALARM_RED, width=2, style=Qt.PenStyle.DashLine)
        )
        hg.addItem(self.hist_threshold_line, ignoreBounds=True)

        self.log_check.toggled.connect(self._on_log_toggled)
        self._apply_palette()

    # -- public ------------------------------------------------------------------------------

    def show_result(
        self,
        times: np.ndarray | None,
        scores: np.ndarray,
        threshold: float,
        flags: np.ndarray,
        events: list[tuple[int, int]],
        failures: list[int],
        labels: np.ndarray | None = None,
    ) -> None:
        """Show one scored file. ``events`` are (start, end-exclusive) rows; ``failures``
        BROKEN rows."""
        scores = np.asarray(scores, dtype=np.float64)
        n = len(scores)
        self._threshold = float(threshold)
        x, dates = x_values(times, n)
        self._axis.show_dates = dates
        self.timeline.setLabel("bottom", "time" if dates else "row (reading number)")
        self._x = x
        step = float(np.median(np.diff(x[:100_001]))) if n > 1 else 1.0

        def edges(rows: np.ndarray) -> np.ndarray:  # row r covers [edges(r), edges(r + 1))
            rows = np.asarray(rows, dtype=np.int64)
            return np.where(rows < n, x[np.minimum(rows, max(n - 1, 0))] if n else 0.0, x[-1] + step if n else 0.0)

        for item in (self.event_spans, self.label_spans):
            item.show()  # a new result starts with everything shown (legend clicks hide)

        curve_x, curve = envelope(x, scores[:, None], MAX_CURVE_POINTS)
        self.error_curve.setData(curve_x, curve[:, 0])

        ev = np.clip(np.asarray(events, dtype=np.int64).reshape(-1, 2), 0, n)
        s, e = _cap_spans(ev[:, 0], ev[:, 1], MAX_SPANS)
        if len(s) < len(ev):
            log.debug("drawing %d alarms as %d bands", len(ev), len(s))
        self.event_spans.set_spans(edges(s), edges(e))
        self._events_total = len(ev)

        if labels is not None and len(labels) == n:
            ls, le = _runs(np.asarray(labels) == 1)
            ls, le = _cap_spans(ls, le, MAX_SPANS)
            self.label_spans.set_spans(edges(ls), edges(le))
        else:
            self.label_spans.set_spans(np.empty(0), np.empty(0))

        rows = [int(r) for r in failures if 0 <= int(r) < n]
        self._show_failures(x[rows] if rows else np.empty(0))

        finite = scores[np.isfinite(scores)]
        self._positive = finite[finite > 0]
        self._update_scales(reset_x=True)
        self._rebuild_legend(has_labels=self.label_spans.count() > 0)
        self._set_titles()
        self._set_summary(n, int(np.count_nonzero(flags)), len(ev), len(rows))

    def clear(self) -> None:
        self.show_result(None, np.empty(0), float("nan"), np.empty(0, bool), [], [], None)

    def failure_lines(self) -> list[pg.InfiniteLine]:
        """The vertical lines now marking failures (a pool is reused between results)."""
        return self._failure_pool[: self._failure_count]

    # -- drawing -----------------------------------------------------------------------------

    def _show_failures(self, xs: np.ndarray) -> None:
        xs = xs[:MAX_FAILURE_LINES]
        while len(self._failure_pool) < len(xs):
            line = pg.InfiniteLine(
                angle=90,
                movable=False,
                pen=pg.mkPen(FAILURE_MAGENTA, width=2),
                label="failure",
                labelOpts={"position": 0.93, "anchors": [(0, 0.5), (0, 0.5)], "color": FAILURE_MAGENTA},
            )
            line.label.fill = self._label_fill()
            line.setZValue(5)
            self.timeline.addItem(line, ignoreBounds=True)
            self._failure_pool.append(line)
        for i, line in enumerate(self._failure_pool):
            if i < len(xs):
                line.setValue(float(xs[i]))
                line.show()
            else:
                line.hide()
        self._failure_count = len(xs)

    def _on_log_toggled(self, _checked: bool) -> None:
        self._update_scales(reset_x=False)

    def _update_scales(self, reset_x: bool) -> None:
        """Apply linear/log error scale to both plots; fit the y range to data and threshold."""
        log = self.log_check.isChecked()
        thr = self._threshold
        self.timeline.setLogMode(x=False, y=log)
        have_thr = bool(np.isfinite(thr) and (thr > 0 or not log))
        self.threshold_line.setVisible(have_thr)
        self.hist_threshold_line.setVisible(have_thr)
        if have_thr:
            self.threshold_line.setValue(np.log10(thr) if log else thr)
            self.threshold_line.label.setFormat(f"threshold {thr:.3g}")
            self.hist_threshold_line.setValue(np.log10(thr) if log else thr)

        vals = self._positive
        if len(vals):
            top = max(float(vals.max()), thr if have_thr else 0.0)
            if log:
                # At most 6 decades (a stray near-zero error would squash the view), at least one
                # (so a labelled 1, 2 or 5 tick is always in view).
                bottom = min(max(float(vals.min()), top * 1e-6), top / 10)
                y_range = (np.log10(bottom), np.log10(top))
            else:
                y_range = (0.0, top)
        else:  # nothing scored: a neutral range around the threshold
            centre = np.log10(thr) if have_thr and thr > 0 else 0.0
            y_range = (centre - 2, centre + 2) if log else (0.0, 2 * thr if have_thr and thr > 0 else 1.0)
        self.timeline.vb.setYRange(*y_range, padding=0.05)
        if reset_x and len(self._x):
            # A little room at the left lets the first month name ("Apr") fit beside the axis.
            self.timeline.vb.setXRange(float(self._x[0]), float(self._x[-1]), padding=0.02)

        self._update_histogram(log)

    def _update_histogram(self, log: bool) -> None:
        hg = self.histogram
        hg.setLogMode(x=log, y=True)
        vals = self._positive
        thr = self._threshold if np.isfinite(self._threshold) else float(np.median(vals)) if len(vals) else 1.0
        if not len(vals):
            for curve in (self.normal_bins, self.alarm_bins):
                curve.setData(np.ones(1), np.zeros(0))
            centre = np.log10(thr) if thr > 0 else 0.0
            hg.setRange(xRange=(centre - 2, centre + 2) if log else (0, 2 * max(thr, 0.5)), yRange=(0, 1), padding=0)
            return
        edges = _histogram_edges(vals, thr, log)
        counted = vals if log else np.minimum(vals, np.nextafter(edges[-1], -np.inf))
        counts, _ = np.histogram(counted, edges)
        heights = np.where(counts > 0, counts, 0.5).astype(np.float64)  # 0.5 = the fill floor: no bar
        split = int(np.searchsorted(edges, thr * (1 - 1e-9)))
        split = min(max(split, 0), len(counts))
        self.normal_bins.setData(edges[: split + 1], heights[:split])
        self.alarm_bins.setData(edges[split:], heights[split:])
        hg.enableAutoRange()
        if log and np.log10(edges[-1] / edges[0]) < 1:  # see _update_scales: keep a decade in view
            mid = np.log10(edges[0] * edges[-1]) / 2
            hg.setXRange(mid - 0.5, mid + 0.5, padding=0.02)

    def _rebuild_legend(self, has_labels: bool) -> None:
        self.legend.clear()
        self.legend.addItem(self.error_curve, "anomaly score")
        entries = [
            ("threshold", "hline", QColor(ALARM_RED), lambda: [self.threshold_line, self.hist_threshold_line]),
            ("alarm (flagged event)", "band", translucent(ALARM_RED, 110), lambda: [self.event_spans]),
        ]
        if has_labels:
            entries.append(("labelled anomaly", "band", translucent(LABEL_AMBER, 110), lambda: [self.label_spans]))
        if self._failure_count:
            entries.append(("failure (BROKEN)", "vline", QColor(FAILURE_MAGENTA), self.failure_lines))
        for name, kind, colour, targets in entries:
            self.legend.addItem(_Swatch(kind, colour, targets), name)
        fit_legend(self.legend)

    def _set_titles(self) -> None:
        _bg, fg = palette_colours(self)
        shown, total = self.event_spans.count(), self._events_total
        if total > shown:
            title = f"Anomaly score over time ({total:,} alarms, drawn as {shown} bands)"
        else:
            title = "Anomaly score over time"
        style_plot(self.timeline, title, fg)
        style_plot(self.histogram, "How often each score occurs", fg)

    def _set_summary(self, rows: int, flagged: int, events: int, failures: int) -> None:
        if not len(self._positive):
            self.summary.setText(f"{rows:,} readings, no anomaly scores to show" if rows else "")
            return
        parts = [f"{rows:,} readings scored", f"{flagged:,} flagged in {counted(events, 'alarm')}"]
        if failures:
            parts.append(f"{counted(failures, 'failure')} marked")
        if np.isfinite(self._threshold):
            parts.append(f"threshold {self._threshold:.3g}")
        self.summary.setText("  ·  ".join(parts))

    def _label_fill(self) -> QBrush:
        """Backing for line labels, so they stay legible over the curve."""
        bg, _fg = palette_colours(self)
        return pg.mkBrush(translucent(bg.name(), 210))

    def _apply_palette(self) -> None:
        bg, fg = palette_colours(self)
        self._canvas.setBackground(bg)
        for line in [self.threshold_line, *self._failure_pool]:
            line.label.fill = self._label_fill()
            line.label.update()
        self._set_titles()
        style_legend(self.legend, bg, fg, overlay=False)
