"""Plot widgets (gui layer); each lives in its own module, this names the ones the pages use."""

from .anomaly_view import AnomalyView
from .figures_html import figures_text
from .loss_plot import LossPlot
from .redraw_pacer import apply_pending_updates
from .sensor_preview import SensorPreview

__all__ = ["AnomalyView", "LossPlot", "SensorPreview", "apply_pending_updates", "figures_text"]
