"""Loss curves over rounds: one named series per curve, drawn in turn by the pacer (gui layer)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtWidgets import QVBoxLayout, QWidget

from .redraw_pacer import shared_pacer
from .styling import SERIES_COLOURS, PaletteAware, fit_legend, palette_colours, prepare_plot, style_legend, style_plot

SYMBOLS_BELOW = 50  # show a marker on every point while a series is this short
LEGEND_COLUMNS = 3  # at most; fewer when the plot is narrow


class LossPlot(PaletteAware):
    """Named loss series over rounds: one curve per name, made on first use, updated in place.

    ``set_series`` may take effect a few ticks later (see ``RedrawPacer``); reading the plot
    back through ``curve`` or ``series_names`` always sees every update made so far.
    """

    def __init__(self, title: str, y_label: str = "loss (MSE)", x_label: str = "round", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._title = title
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._pending: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        # The legend has its own row under the plot: floating over it, it hid the curves' ends.
        self._view = pg.GraphicsLayoutWidget()
        self._view.setMinimumSize(240, 160)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._view)
        self.plot: pg.PlotItem = self._view.addPlot(row=0, col=0)
        self.plot.setLabel("left", y_label)
        self.plot.setLabel("bottom", x_label)
        self.plot.setMenuEnabled(True)
        prepare_plot(self.plot)
        self._whole_round_ticks(1.0)
        self.legend = pg.LegendItem(colCount=LEGEND_COLUMNS, horSpacing=14, verSpacing=-4)
        self._view.addItem(self.legend, row=1, col=0)
        self._view.ci.layout.setAlignment(self.legend, Qt.AlignmentFlag.AlignHCenter)
        self.legend.hide()  # an empty legend is an empty row
        self._apply_palette()

    def set_series(self, name: str, xs: Iterable[float], ys: Iterable[float]) -> None:
        """Show ``ys`` against ``xs`` as series ``name`` (a new name gets a new colour and
        legend entry)."""
        x = np.asarray(xs, dtype=np.float64)
        y = np.asarray(ys, dtype=np.float64)
        if x.shape != y.shape:
            raise ValueError(f"series {name!r}: {len(x)} x values but {len(y)} y values")
        self._pending[name] = (x, y)
        shared_pacer().request(self)

    def apply_pending(self) -> None:
        """Draw the series set since the last call (the pacer calls this in turn)."""
        pending, self._pending = self._pending, {}
        added = False
        for name, (x, y) in pending.items():
            curve = self._curves.get(name)
            if curve is None:
                added = True
                colour = SERIES_COLOURS[len(self._curves) % len(SERIES_COLOURS)]
                curve = self.plot.plot(
                    pen=pg.mkPen(colour, width=2),
                    name=name,
                    connect="finite",
                    symbolBrush=colour,
                    symbolPen=pg.mkPen(colour),
                    symbolSize=6,
                )
                self._curves[name] = curve
                self.legend.addItem(curve, name)
            symbol = "o" if len(x) < SYMBOLS_BELOW else None
            if curve.opts["symbol"] != symbol:
                curve.setSymbol(symbol)
            curve.setData(x, y)
        if pending:
            self.legend.show()
            if added:  # a new legend entry: lay the legend out again (a resize does it too)
                self._arrange_legend()
            self._whole_round_ticks(
                max((float(c.xData.max()) for c in self._curves.values() if c.xData is not None and len(c.xData)), default=1.0)
            )
            # Settle the auto-range now: left to paint time, pyqtgraph finds the range changed
            # and paints the plot a second time.
            self.plot.vb.prepareForPaint()

    def _whole_round_ticks(self, last: float) -> None:
        """Ticks on whole rounds (never "round 1.5"), about six whatever the run's length."""
        step = next(s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 10_000) if last / s <= 6)
        self.plot.getAxis("bottom").setTickSpacing(major=step, minor=step)

    def _arrange_legend(self) -> None:
        """As many legend columns (up to LEGEND_COLUMNS) as the plot's width holds: a legend
        wider than the plot would push the plot out of its own frame."""
        for columns in range(LEGEND_COLUMNS, 0, -1):
            self.legend.setColumnCount(columns)
            self.legend.setMinimumWidth(0)
            self.legend.setMaximumWidth(10_000)
            fit_legend(self.legend)
            if self.legend.width() <= self._view.width() - 16:
                break
        # A wider legend grew the canvas past the view; pyqtgraph sets it back to the view's
        # size only on a resize, so ask for that now.
        self._view.setRange(QRectF(0, 0, self._view.width(), self._view.height()), padding=0, disableAutoPixel=False)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        if self._curves:
            self._arrange_legend()

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
            self.plot.removeItem(curve)
        self.legend.clear()
        self._curves.clear()
        self.legend.hide()
        self.plot.enableAutoRange()
        self._whole_round_ticks(1.0)

    def _apply_palette(self) -> None:
        bg, fg = palette_colours(self)
        self._view.setBackground(bg)
        style_plot(self.plot, self._title, fg)
        style_legend(self.legend, bg, fg, overlay=False)
