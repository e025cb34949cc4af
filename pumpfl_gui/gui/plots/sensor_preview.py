"""A few sensors over time, z-scored onto one axis: a preview of a facility's data (gui layer)."""

from __future__ import annotations

import warnings

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QVBoxLayout, QWidget

from .styling import (
    SERIES_COLOURS,
    PaletteAware,
    TimeOrRowAxis,
    fit_legend,
    palette_colours,
    prepare_plot,
    style_legend,
    style_plot,
    x_values,
)


class SensorPreview(PaletteAware):
    """A few sensors over time, each scaled to its own mean and spread so all share one axis."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._title = "Sensor readings"  # the axis says how they are scaled
        self._axis = TimeOrRowAxis()
        self._canvas = pg.GraphicsLayoutWidget()
        self._canvas.setMinimumSize(240, 160)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._canvas)
        self.plot: pg.PlotItem = self._canvas.addPlot(row=0, col=0, axisItems={"bottom": self._axis})
        self.plot.setLabel("left", "z-score (std. dev. from mean)")
        self.plot.setLabel("bottom", "row (reading number)")
        prepare_plot(self.plot)
        # Below the plot rather than over it: sensors that move together fill the whole view.
        # Two columns: four names in a row would hold the plot wider than a narrow pane.
        self.legend = pg.LegendItem(colCount=2, horSpacing=14, verSpacing=-4)
        self._canvas.addItem(self.legend, row=1, col=0)
        self._canvas.ci.layout.setAlignment(self.legend, Qt.AlignmentFlag.AlignHCenter)
        self.curves: list[pg.PlotDataItem] = []  # grown on demand, reused by later calls
        self._shown = 0
        self._apply_palette()

    def show(
        self,
        times: np.ndarray | None = None,
        values: np.ndarray | None = None,  # noqa: A003
        names: list[str] | None = None,
    ) -> None:
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
        x, dates = x_values(times, rows)
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
        style_legend(self.legend, *palette_colours(self), overlay=False)
        fit_legend(self.legend)
        self.plot.enableAutoRange()

    def shown_curves(self) -> list[pg.PlotDataItem]:
        return self.curves[: self._shown]

    def _apply_palette(self) -> None:
        bg, fg = palette_colours(self)
        self._canvas.setBackground(bg)
        style_plot(self.plot, self._title, fg)
        style_legend(self.legend, bg, fg, overlay=False)
