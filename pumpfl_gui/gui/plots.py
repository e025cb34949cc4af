"""Plot widgets: loss curves, the anomaly timeline with its error histogram, the sensor preview.

GUI layer (pyqtgraph on PySide6). The pages hand these widgets plain numbers — lists, numpy
arrays, the metrics dict of a score — so nothing here imports ``core`` or ``fl``.

Habits kept throughout: every curve or item is made once and later updated with ``setData``
(or hidden and reused); long series are peak-downsampled and clipped to the visible range;
colours come from the widget palette (background = Base, text = Text) or from a fixed set
chosen to keep at least 3:1 contrast on both white and near-black backgrounds.
"""

from __future__ import annotations

import html
import logging
import warnings
from collections.abc import Callable, Iterable

import numpy as np
import pyqtgraph as pg
import shiboken6
from PySide6.QtCore import QEvent, QObject, QRectF, Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QPalette
from PySide6.QtWidgets import QCheckBox, QGraphicsItem, QHBoxLayout, QLabel, QVBoxLayout, QWidget

log = logging.getLogger(__name__)

# Series colours, in order of use: blue, orange, green, purple, teal, magenta, olive, grey.
# Each has >= 3:1 contrast against white and against #1e1e1e, so light and dark palettes both work.
SERIES_COLOURS = ("#2E86DE", "#D9730D", "#27954A", "#A05EC8", "#0F9BAA", "#C2459A", "#A0892C", "#7F7F7F")
ALARM_RED = "#E64B35"  # flagged events and histogram bins above the threshold
LABEL_AMBER = "#C48A00"  # labelled (known) anomalies
FAILURE_MAGENTA = "#C2459A"  # BROKEN minutes

SYMBOLS_BELOW = 50  # show a marker on every point while a series is this short
MAX_SPANS = 500  # bands drawn per kind; beyond this, neighbouring events are merged for drawing
MAX_FAILURE_LINES = 100
HISTOGRAM_BINS = 60


# ---- shared styling ---------------------------------------------------------------------------


def _palette_colours(widget: QWidget) -> tuple[QColor, QColor]:
    """(background, foreground) for plots: the palette's Base and Text colours."""
    pal = widget.palette()
    return pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.Text)


def _style_plot(plot: pg.PlotItem, title: str, fg: QColor) -> None:
    plot.setTitle(html.escape(title), color=fg, size="11pt")
    for name in ("left", "bottom"):
        axis = plot.getAxis(name)
        axis.setPen(pg.mkPen(fg))
        axis.setTextPen(pg.mkPen(fg))
        axis.label.setDefaultTextColor(fg)


def _style_legend(legend: pg.LegendItem, bg: QColor, fg: QColor, overlay: bool = True) -> None:
    """Colour a legend; one floating over a plot gets a near-opaque box, one in its own row none."""
    if overlay:
        fill = QColor(bg)
        fill.setAlpha(210)  # the curve underneath stays faintly visible
        legend.setBrush(pg.mkBrush(fill))
        edge = QColor(fg)
        edge.setAlpha(80)
        legend.setPen(pg.mkPen(edge))
    legend.setLabelTextColor(fg)
    for _sample, label in legend.items:  # setLabelTextColor only colours labels added later
        label.setText(label.text, color=fg)


def _fit_legend(legend: pg.LegendItem) -> None:
    """Keep a legend row as wide as its entries (a layout cell would spread them apart)."""
    hint = legend.layout.effectiveSizeHint(Qt.SizeHint.PreferredSize)
    legend.setFixedWidth(hint.width())
    legend.setFixedHeight(hint.height())
    # Lay out now, not on the next event-loop turn: a grab() or paint right after an update
    # would otherwise draw every entry on top of the others.
    legend.layout.activate()
    outer = legend.parentLayoutItem()
    if outer is not None and outer.isLayout():
        outer.activate()


def _prepare_plot(plot: pg.PlotItem, long_series: bool = True) -> None:
    """Plain tick numbers and a light grid; for long series, peak-downsample and draw only what
    is in view (a 77,000-row file stays smooth). Histograms opt out: pyqtgraph's downsampling
    and clipping break step-mode (bar) curves, and 60 bars need neither."""
    for name in ("left", "bottom", "top", "right"):
        axis = plot.getAxis(name)
        axis.enableAutoSIPrefix(False)  # "(x0.001)" after an axis label puzzles readers
        # Keep each axis (ticks, labels, grid) as a pixmap: repainting the plot then blits it
        # instead of replaying ~100 text and line commands, about 5 ms less per repaint, and a
        # round's update repaints each plot two or three times (pyqtgraph settles its ranges).
        axis.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
    plot.titleLabel.item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
    _let_title_shrink(plot.titleLabel)
    plot.showGrid(x=True, y=True, alpha=0.2)
    if long_series:
        plot.setDownsampling(auto=True, mode="peak")
        plot.setClipToView(True)


def _let_title_shrink(label: pg.LabelItem) -> None:
    """A title must not hold its plot wider than the view: pyqtgraph makes the text's width the
    label's minimum, so in a narrow pane the whole plot (legend included) ran off the right edge.
    The label now may get narrower than its text, which then overflows its own row evenly."""
    measure = label.updateMin

    def update_min() -> None:
        measure()
        label.setMinimumWidth(0)

    label.updateMin = update_min  # pyqtgraph calls it on every text change and resize
    update_min()


def _translucent(colour: str, alpha: int) -> QColor:
    c = QColor(colour)
    c.setAlpha(alpha)
    return c


def _x_values(times: np.ndarray | None, rows: int) -> tuple[np.ndarray, bool]:
    """(x, dates?): datetime64 stamps as float seconds since 1970, else row numbers.

    The stamps are naive plant-local times; the date axis shows them unshifted (UTC), so a
    reading taken at 08:00 is drawn at 08:00 whatever the viewer's time zone.
    """
    if times is not None and len(times) == rows and rows:
        stamps = np.asarray(times)
        if np.issubdtype(stamps.dtype, np.datetime64) and not np.isnat(stamps).any():
            return stamps.astype("datetime64[ms]").astype(np.int64) / 1000.0, True
    return np.arange(rows, dtype=np.float64), False


class _TimeOrRowAxis(pg.DateAxisItem):
    """Bottom axis that shows dates for timestamped data and plain row numbers otherwise.

    One axis item switched by a flag: swapping axis items on a live plot is fragile.
    ``utcOffset=0`` because the data's timestamps carry no zone: show them exactly as written.
    """

    def __init__(self) -> None:
        super().__init__(orientation="bottom", utcOffset=0)
        self.show_dates = False

    def tickValues(self, minVal, maxVal, size):  # noqa: N802 (pyqtgraph's name)
        if not self.show_dates:
            return pg.AxisItem.tickValues(self, minVal, maxVal, size)
        # DateAxisItem puts a day tick right beside a month tick ("29May"); drop such minor ticks.
        taken = np.empty(0)
        levels = []
        for spacing, values in super().tickValues(minVal, maxVal, size):
            values = np.asarray(values, dtype=np.float64)
            if len(taken):
                gap = np.abs(values[:, None] - taken[None, :]).min(axis=1)
                values = values[gap >= self.minSpacing]
            levels.append((spacing, values.tolist()))
            taken = np.concatenate((taken, values))
        return levels

    def tickStrings(self, values, scale, spacing):  # noqa: N802
        if self.show_dates:
            return super().tickStrings(values, scale, spacing)
        return [f"{v:,.0f}" if spacing >= 1 else f"{v:g}" for v in values]


class _PlainLogAxis(pg.AxisItem):
    """In log mode, label ticks as plain numbers (0.01, 1, 100) and minor ticks only at 2 and 5.

    pyqtgraph's own labels mix "0.1" with "10²" and label every minor tick, which run together
    on a short axis.
    """

    def logTickStrings(self, values, scale, spacing):  # noqa: N802 (pyqtgraph's name)
        out = []
        for v in values:
            number = 10.0 ** v * scale
            mantissa = round(number / 10.0 ** np.floor(np.log10(number)), 6) if number > 0 else 0
            if spacing is None and mantissa not in (1.0, 2.0, 5.0):
                out.append("")
            elif 1e-3 <= number < 1e4:
                out.append(f"{number:.4g}")
            elif 1e4 <= number < 1e7:
                out.append(f"{number:,.0f}")
            else:
                out.append(f"{number:.0e}".replace("e+0", "e").replace("e-0", "e-").replace("e+", "e"))
        return out


class _PaletteAware(QWidget):
    """Re-applies plot colours whenever the widget palette changes (light/dark switch)."""

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt's name)
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()
        super().changeEvent(event)

    def _apply_palette(self) -> None:
        raise NotImplementedError


# ---- 1. loss curves -------------------------------------------------------------------------


class _RedrawPacer(QObject):
    """Applies loss-plot updates at most one plot per tick.

    A round's results change three or four plots at once, and on a busy machine each repaint of
    a plot costs 10–40 ms of the GUI thread (pyqtgraph settles its ranges over two or three
    passes). Repainted in one event-loop turn they froze the window for over 100 ms; spread over
    ticks of ``TICK_MS`` each turn holds one repaint, and the reader still sees every plot move
    within a fraction of a second. An update arriving while the pacer is idle is applied at once.
    """

    TICK_MS = 80

    def __init__(self) -> None:
        super().__init__()
        self._queue: list[LossPlot] = []
        self._timer = QTimer(self)
        self._timer.setInterval(self.TICK_MS)
        self._timer.timeout.connect(self._tick)

    def request(self, plot: LossPlot) -> None:
        if self._timer.isActive():
            if plot not in self._queue:
                self._queue.append(plot)
        else:
            plot.apply_pending()
            self._timer.start()  # later requests wait for the next tick

    def flush(self) -> None:
        while self._queue:
            plot = self._queue.pop(0)
            if shiboken6.isValid(plot):
                plot.apply_pending()

    def _tick(self) -> None:
        while self._queue:
            plot = self._queue.pop(0)
            if not shiboken6.isValid(plot):
                continue
            plot.apply_pending()
            if plot.isVisible():  # a hidden plot does not repaint, so it does not use the tick
                return
        self._timer.stop()


_pacer: _RedrawPacer | None = None


def _redraw_pacer() -> _RedrawPacer:
    global _pacer
    if _pacer is None or not shiboken6.isValid(_pacer):
        _pacer = _RedrawPacer()
    return _pacer


def apply_pending_updates() -> None:
    """Apply every loss-plot update still waiting for its turn (call before a screenshot)."""
    if _pacer is not None and shiboken6.isValid(_pacer):
        _pacer.flush()


class LossPlot(_PaletteAware):
    """Named loss series over rounds: one curve per name, made on first use, updated in place.

    ``set_series`` may take effect a few ticks later (see ``_RedrawPacer``); reading the plot
    back through ``curve`` or ``series_names`` always sees every update made so far.
    """

    def __init__(self, title: str, y_label: str = "loss (MSE)", x_label: str = "round",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._title = title
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._pending: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._view = pg.PlotWidget()
        self._view.setMinimumSize(240, 160)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._view)
        self.plot: pg.PlotItem = self._view.getPlotItem()
        self.plot.setLabel("left", y_label)
        self.plot.setLabel("bottom", x_label)
        self.plot.setMenuEnabled(True)
        _prepare_plot(self.plot)
        self.legend: pg.LegendItem = self.plot.addLegend(offset=(-10, 10))
        self.legend.hide()  # an empty legend is a stray box in the corner
        self._apply_palette()

    def set_series(self, name: str, xs: Iterable[float], ys: Iterable[float]) -> None:
        """Show ``ys`` against ``xs`` as series ``name`` (a new name gets a new colour and legend entry)."""
        x = np.asarray(xs, dtype=np.float64)
        y = np.asarray(ys, dtype=np.float64)
        if x.shape != y.shape:
            raise ValueError(f"series {name!r}: {len(x)} x values but {len(y)} y values")
        self._pending[name] = (x, y)
        _redraw_pacer().request(self)

    def apply_pending(self) -> None:
        """Draw the series set since the last call (the pacer calls this in turn)."""
        pending, self._pending = self._pending, {}
        for name, (x, y) in pending.items():
            curve = self._curves.get(name)
            if curve is None:
                colour = SERIES_COLOURS[len(self._curves) % len(SERIES_COLOURS)]
                curve = self.plot.plot(pen=pg.mkPen(colour, width=2), name=name, connect="finite",
                                       symbolBrush=colour, symbolPen=pg.mkPen(colour), symbolSize=6)
                self._curves[name] = curve
            symbol = "o" if len(x) < SYMBOLS_BELOW else None
            if curve.opts["symbol"] != symbol:
                curve.setSymbol(symbol)
            curve.setData(x, y)
        if pending:
            self.legend.show()
            # Settle the auto-range now: left to paint time, pyqtgraph finds the range changed
            # and paints the plot a second time.
            self.plot.vb.prepareForPaint()

    def has_pending(self) -> bool:
        return bool(self._pending)

    def curve(self, name: str) -> pg.PlotDataItem:
        self.apply_pending()
        return self._curves[name]

    def series_names(self) -> list[str]:
        self.apply_pending()
        return list(self._curves)

    def clear(self) -> None:
        """Remove every series (a new run starts with an empty plot and legend)."""
        self._pending.clear()
        for curve in self._curves.values():
            self.plot.removeItem(curve)  # also drops its legend entry
        self._curves.clear()
        self.legend.hide()
        self.plot.enableAutoRange()

    def _apply_palette(self) -> None:
        bg, fg = _palette_colours(self)
        self._view.setBackground(bg)
        _style_plot(self.plot, self._title, fg)
        _style_legend(self.legend, bg, fg)


# ---- 2. anomaly view --------------------------------------------------------------------------


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
    kept = np.sort(np.argpartition(gaps, -(cap - 1))[-(cap - 1):])  # the widest cap-1 gaps stay open
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
    return 10.0 ** edges if log else edges


class AnomalyView(_PaletteAware):
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
        self._axis = _TimeOrRowAxis()
        self.timeline: pg.PlotItem = self._canvas.addPlot(
            row=1, col=0, axisItems={"bottom": self._axis, "left": _PlainLogAxis("left")})
        self.histogram: pg.PlotItem = self._canvas.addPlot(
            row=1, col=1, axisItems={"bottom": _PlainLogAxis("bottom"), "left": _PlainLogAxis("left")})
        self._canvas.ci.layout.setColumnStretchFactor(0, 3)
        self._canvas.ci.layout.setColumnStretchFactor(1, 1)
        self._canvas.ci.layout.setHorizontalSpacing(18)  # keep the histogram's axis title off the timeline

        tl = self.timeline
        tl.setLabel("left", "anomaly score (spreads off normal)")
        tl.setLabel("bottom", "row (reading number)")
        _prepare_plot(tl)
        self.label_spans = _Spans(_translucent(LABEL_AMBER, 70))
        self.label_spans.setZValue(-20)
        tl.addItem(self.label_spans, ignoreBounds=True)
        self.event_spans = _Spans(_translucent(ALARM_RED, 80))
        self.event_spans.setZValue(-10)
        tl.addItem(self.event_spans, ignoreBounds=True)
        self.error_curve: pg.PlotDataItem = tl.plot(pen=pg.mkPen(SERIES_COLOURS[0], width=1), connect="finite")
        self.threshold_line = pg.InfiniteLine(
            angle=0, movable=False, pen=pg.mkPen(ALARM_RED, width=2, style=Qt.PenStyle.DashLine),
            label="threshold", labelOpts={"position": 0.98, "anchors": [(1, 1), (1, 0)], "color": ALARM_RED},
        )
        self.threshold_line.setZValue(10)
        tl.addItem(self.threshold_line, ignoreBounds=True)
        self._failure_pool: list[pg.InfiniteLine] = []
        self._failure_count = 0

        hg = self.histogram
        hg.setLabel("left", "readings (count)")
        hg.setLabel("bottom", "anomaly score")
        hg.setLogMode(x=True, y=True)  # counts, too, span orders of magnitude (the alarm tail is small)
        _prepare_plot(hg, long_series=False)
        hg.setMouseEnabled(y=False)
        self._fill_floor = np.log10(0.5)  # bars rise from half a count, so a bin of 1 shows
        self.normal_bins: pg.PlotDataItem = hg.plot(
            stepMode="center", fillLevel=self._fill_floor, pen=pg.mkPen(SERIES_COLOURS[0], width=1),
            brush=_translucent(SERIES_COLOURS[0], 120))
        self.alarm_bins: pg.PlotDataItem = hg.plot(
            stepMode="center", fillLevel=self._fill_floor, pen=pg.mkPen(ALARM_RED, width=1),
            brush=_translucent(ALARM_RED, 140))
        self.hist_threshold_line = pg.InfiniteLine(
            angle=90, movable=False, pen=pg.mkPen(ALARM_RED, width=2, style=Qt.PenStyle.DashLine))
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
        """Show one scored file. ``events`` are (start, end-exclusive) rows; ``failures`` BROKEN rows."""
        scores = np.asarray(scores, dtype=np.float64)
        n = len(scores)
        self._threshold = float(threshold)
        x, dates = _x_values(times, n)
        self._axis.show_dates = dates
        self.timeline.setLabel("bottom", "time" if dates else "row (reading number)")
        self._x = x
        step = float(np.median(np.diff(x))) if n > 1 else 1.0
        edges = np.append(x, x[-1] + step) if n else np.zeros(1)  # row r covers [edges[r], edges[r+1])
        for item in (self.event_spans, self.label_spans):
            item.show()  # a new result starts with everything shown (legend clicks hide)

        self.error_curve.setData(x, scores)

        ev = np.clip(np.asarray(events, dtype=np.int64).reshape(-1, 2), 0, n)
        s, e = _cap_spans(ev[:, 0], ev[:, 1], MAX_SPANS)
        if len(s) < len(ev):
            log.debug("drawing %d alarms as %d bands", len(ev), len(s))
        self.event_spans.set_spans(edges[s], edges[e])
        self._events_total = len(ev)

        if labels is not None and len(labels) == n:
            ls, le = _runs(np.asarray(labels) == 1)
            ls, le = _cap_spans(ls, le, MAX_SPANS)
            self.label_spans.set_spans(edges[ls], edges[le])
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
                angle=90, movable=False, pen=pg.mkPen(FAILURE_MAGENTA, width=2),
                label="failure", labelOpts={"position": 0.93, "anchors": [(0, 0.5), (0, 0.5)],
                                            "color": FAILURE_MAGENTA},
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
            ("alarm (flagged event)", "band", _translucent(ALARM_RED, 110), lambda: [self.event_spans]),
        ]
        if has_labels:
            entries.append(("labelled anomaly", "band", _translucent(LABEL_AMBER, 110), lambda: [self.label_spans]))
        if self._failure_count:
            entries.append(("failure (BROKEN)", "vline", QColor(FAILURE_MAGENTA), self.failure_lines))
        for name, kind, colour, targets in entries:
            self.legend.addItem(_Swatch(kind, colour, targets), name)
        _fit_legend(self.legend)

    def _set_titles(self) -> None:
        _bg, fg = _palette_colours(self)
        shown, total = self.event_spans.count(), self._events_total
        if total > shown:
            title = f"Anomaly score over time ({total:,} alarms, drawn as {shown} bands)"
        else:
            title = "Anomaly score over time"
        _style_plot(self.timeline, title, fg)
        _style_plot(self.histogram, "How often each score occurs", fg)

    def _set_summary(self, rows: int, flagged: int, events: int, failures: int) -> None:
        if not len(self._positive):
            self.summary.setText(f"{rows:,} readings, no anomaly scores to show" if rows else "")
            return
        parts = [f"{rows:,} readings scored", f"{flagged:,} flagged in {events:,} alarm(s)"]
        if failures:
            parts.append(f"{failures} failure(s) marked")
        if np.isfinite(self._threshold):
            parts.append(f"threshold {self._threshold:.3g}")
        self.summary.setText("  ·  ".join(parts))

    def _label_fill(self) -> QBrush:
        """Backing for line labels, so they stay legible over the curve."""
        bg, _fg = _palette_colours(self)
        return pg.mkBrush(_translucent(bg.name(), 210))

    def _apply_palette(self) -> None:
        bg, fg = _palette_colours(self)
        self._canvas.setBackground(bg)
        for line in [self.threshold_line, *self._failure_pool]:
            line.label.fill = self._label_fill()
            line.label.update()
        self._set_titles()
        _style_legend(self.legend, bg, fg, overlay=False)


# ---- 3. sensor preview ------------------------------------------------------------------------


class SensorPreview(_PaletteAware):
    """A few sensors over time, each scaled to its own mean and spread so all share one axis."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._title = "Sensor readings"  # the axis says how they are scaled
        self._axis = _TimeOrRowAxis()
        self._canvas = pg.GraphicsLayoutWidget()
        self._canvas.setMinimumSize(240, 160)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._canvas)
        self.plot: pg.PlotItem = self._canvas.addPlot(row=0, col=0, axisItems={"bottom": self._axis})
        self.plot.setLabel("left", "z-score (std. dev. from mean)")
        self.plot.setLabel("bottom", "row (reading number)")
        _prepare_plot(self.plot)
        # Below the plot rather than over it: sensors that move together fill the whole view.
        # Two columns: four names in a row would hold the plot wider than a narrow pane.
        self.legend = pg.LegendItem(colCount=2, horSpacing=14, verSpacing=-4)
        self._canvas.addItem(self.legend, row=1, col=0)
        self._canvas.ci.layout.setAlignment(self.legend, Qt.AlignmentFlag.AlignHCenter)
        self.curves: list[pg.PlotDataItem] = []  # grown on demand, reused by later calls
        self._shown = 0
        self._apply_palette()

    def show(self, times: np.ndarray | None = None, values: np.ndarray | None = None,  # noqa: A003
             names: list[str] | None = None) -> None:
        """``show(times, values, names)`` plots sensors (see :meth:`show_sensors`).

        Called without arguments it is QWidget.show(), which this name would otherwise hide.
        """
        if values is None:
            super().show()
        else:
            self.show_sensors(times, values, names or [])

    def show_sensors(self, times: np.ndarray | None, values: np.ndarray, names: list[str]) -> None:
        """Plot ``values`` (rows, k): one z-scored curve per column, named in the legend."""
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]
        rows, k = values.shape
        if len(names) != k:
            raise ValueError(f"{k} sensor columns but {len(names)} names")
        x, dates = _x_values(times, rows)
        self._axis.show_dates = dates
        self.plot.setLabel("bottom", "time" if dates else "row (reading number)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-empty sensor: NaN, drawn as nothing
            mean = np.nanmean(values, axis=0) if rows else np.zeros(k)
            std = np.nanstd(values, axis=0) if rows else np.ones(k)
        std = np.where(np.isfinite(std) & (std > 0), std, 1.0)  # a constant sensor sits flat at 0
        z = (values - mean) / std

        while len(self.curves) < k:
            colour = SERIES_COLOURS[len(self.curves) % len(SERIES_COLOURS)]
            self.curves.append(self.plot.plot(pen=pg.mkPen(colour, width=1), connect="finite"))
        self.legend.clear()
        for i, curve in enumerate(self.curves):
            if i < k:
                curve.setData(x, z[:, i])
                curve.show()
                self.legend.addItem(curve, names[i])
            else:
                curve.setData([], [])
                curve.hide()
        self._shown = k
        _style_legend(self.legend, *_palette_colours(self), overlay=False)
        _fit_legend(self.legend)
        self.plot.enableAutoRange()

    def shown_curves(self) -> list[pg.PlotDataItem]:
        return self.curves[: self._shown]

    def _apply_palette(self) -> None:
        bg, fg = _palette_colours(self)
        self._canvas.setBackground(bg)
        _style_plot(self.plot, self._title, fg)
        _style_legend(self.legend, bg, fg, overlay=False)


# ---- figures for the page's text panel ----------------------------------------------------------


def _fmt(value, spec: str, suffix: str = "") -> str:
    return "–" if value is None else f"{format(value, spec)}{suffix}"


def figures_text(metrics: dict) -> str:
    """Short HTML lines summarising ``score_data(...).metrics`` for plant staff.

    Keys (each optional): "failures" (BROKEN minutes caught ahead, lead time, false alarms),
    "label_events" (labelled anomaly runs an alarm overlapped), "pointwise" (per-reading scores).
    Returns "" when there is nothing to score against (no labels, no machine status).
    """
    lines: list[str] = []
    f = metrics.get("failures")
    if f:
        if f.get("failures"):
            lines.append(f"<b>Failures caught before breakdown:</b> {f['caught']} of {f['failures']}")
            lines.append(f"<b>Median warning time:</b> {_fmt(f.get('median_lead_hours'), '.1f', ' h')}")
        else:
            lines.append("<b>Failures:</b> none in this file")
        lines.append(
            f"<b>False alarms:</b> {_fmt(f.get('false_alarms_per_day'), '.2f')} per day "
            f"({f.get('false_alarms', 0)} in {_fmt(f.get('watched_days'), '.1f')} days of normal running)"
        )
    e = metrics.get("label_events")
    if e:
        lines.append(f"<b>Labelled anomalies with an alarm:</b> {e['detected']} of {e['anomaly_events']}")
    p = metrics.get("pointwise")
    if p:
        lines.append(
            f"<b>Precision</b> {p['precision']:.0%} (alarmed readings that were anomalous) · "
            f"<b>recall</b> {p['recall']:.0%} (anomalous readings alarmed)"
        )
    return "<br>".join(lines)
