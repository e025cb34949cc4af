"""Writing per-row scores and flags to CSV (core layer; pandas)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .dataset import SensorData


def write_scores_csv(path: Path, data: SensorData, result) -> Path:
    """One row per input row: time, score, threshold, flagged, event number, labels if any."""
    event_id = np.zeros(data.rows, dtype=np.int64)
    for i, (s, e) in enumerate(result.events, 1):
        event_id[s:e] = i
    frame = pd.DataFrame(
        {
            "row": np.arange(data.rows),
            "score": result.scores,
            "threshold": result.threshold,
            "flagged": result.flags.astype(np.int8),
            "event": event_id,
        }
    )
    if data.timestamps is not None:
        frame.insert(0, "timestamp", pd.to_datetime(data.timestamps))
    if data.status is not None:
        frame["machine_status"] = data.status
    if data.labels is not None:
        frame["label"] = data.labels
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, float_format="%.6g")
    return path
