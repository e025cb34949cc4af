"""What every plot here shares: colours, axes, styling from the widget palette (gui layer).

The pages hand the plot widgets plain numbers — lists, numpy arrays, the metrics dict of a
score — so nothing in this package imports ``core`` or ``fl``.

Habits kept throughout: every curve or item is made once and later updated with ``setData``
(or hidden and reused); long series are peak-downsampled and clipped to the visible range;
colours come from the widget palette (background = Base, text = Text) or from a fixed set
chosen to keep at least 3:1 contrast on both white and near-black backgrounds.
"""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QGraphicsItem, QWidget

# Series colours, in order of use: blue, orange, green, purple, teal, magenta, olive, grey.
# Each has >= 3:1 contrast against white and against #1e1e1e, so light and dark palettes both work.
SERIES_COLOURS = ("#2E86DE", "#D9730D", "#27954A", "#A05EC8", "#0F9BAA", "#C2459A", "#A0892C", "#7F7F7F")
ALARM_RED = "#E64B35"  # flagged events and histogram bins above the threshold
LABEL_AMBER = "#C48A00"  # labelled (known) anomalies
FAILURE_MAGENTA = "#C2459A"  # BROKEN minutes


def palette_colours(widget: QWidget) -> tuple[QColor, QColor]:
    """(background, foreground) for plots: the palette's Base and Text colours."""
    pal = widget.palette()
    return pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.Text)


def style_plot(plot: pg.PlotItem, title: str, fg: QColor) -> None:
    plot.setTitle(html.escape(title), color=fg, size="11pt")
    for name in ("left", "bottom"):
        axis = plot.getAxis(name)
        axis.setPen(pg.mkPen(fg))
        axis.setTextPen(pg.mkPen(fg))
        axis.label.setDefaultTextColor(fg)


def style_legend(legend: pg.LegendItem, bg: QColor, fg: QColor, overlay: bool = True) -> None:
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


def fit_legend(legend: pg.LegendItem) -> None:
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


def prepare_plot(plot: pg.PlotItem, long_series: bool = True) -> None:
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


def translucent(colour: str, alpha: int) -> QColor:
    c = QColor(colour)
    c.setAlpha(alpha)
    return c


def x_values(times: np.ndarray | None, rows: int) -> tuple[np.ndarray, bool]:
    """(x, dates?): datetime64 stamps as float seconds since 1970, else row numbers.

    The stamps are naive plant-local times; the date axis shows them unshifted (UTC), so a
    reading taken at 08:00 is drawn at 08:00 whatever the viewer's time zone.
    """
    if times is not None and len(times) == rows and rows:
        stamps = np.asarray(times)
        if np.issubdtype(stamps.dtype, np.datetime64) and not np.isnat(stamps).any():
            return stamps.astype("datetime64[ms]").astype(np.int64) / 1000.0, True
    return np.arange(rows, dtype=np.float64), False


class TimeOrRowAxis(pg.DateAxisItem):
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


class PlainLogAxis(pg.AxisItem):
    """In log mode, label ticks as plain numbers (0.01, 1, 100) and minor ticks only at 2 and 5.

    pyqtgraph's own labels mix "0.1" with "10²" and label every minor tick, which run together
    on a short axis.
    """

    def logTickStrings(self, values, scale, spacing):  # noqa: N802 (pyqtgraph's name)
        out = []
        for v in values:
            number = 10.0**v * scale
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


class PaletteAware(QWidget):
    """Re-applies plot colours whenever the widget palette changes (light/dark switch)."""

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt's name)
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()
        super().changeEvent(event)

    def _apply_palette(self) -> None:
        raise NotImplementedError
