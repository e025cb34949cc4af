"""PumpFL: federated pump-sensor anomaly detection (package root).

Importing the package switches Flower's usage telemetry off before anything can import
Flower: a privacy product must not phone home.
"""

import os

os.environ["FLWR_TELEMETRY_ENABLED"] = "0"

__version__ = "0.1.0"
