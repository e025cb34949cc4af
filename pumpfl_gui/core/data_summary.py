"""A loaded sensor file in a few lines of text: what ``pumpfl data check`` prints and the
app's preview shows (core layer; no Qt)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .csv_text import SEPARATOR_NAMES
from .dataset import PUMP_STATUSES, SensorData
from .wording import duration


def describe(data: SensorData) -> str:
    """A short multi-line human summary of a loaded file (``pumpfl data check`` prints it)."""
    out = [
        f"file: {data.path}",
        f"schema: {data.schema} ({SEPARATOR_NAMES.get(data.separator, repr(data.separator))}-separated)",
        f"rows: {data.rows:,}",
    ]
    if data.timestamps is not None and data.rows:
        first, last = data.timestamps[0], data.timestamps[-1]
        seconds = (last - first) / np.timedelta64(1, "s")
        out.append(f"time: {pd.Timestamp(first)} to {pd.Timestamp(last)} ({duration(seconds)}), column '{data.time_column}'")
    else:
        out.append("time: no time column (rows taken in file order)")
    names = data.sensors if len(data.sensors) <= 10 else data.sensors[:5] + ["...", data.sensors[-1]]
    out.append(f"sensors used: {len(data.sensors)} ({', '.join(names)})")
    if data.dropped:
        items = [f"{c} ({why})" for c, why in data.dropped.items()]
        out.append(f"dropped columns ({len(items)}): " + "; ".join(items))
    else:
        out.append("dropped columns: none")
    if data.missing_fraction:
        overall = sum(data.missing_fraction.values()) / len(data.missing_fraction)
        worst = max(data.missing_fraction, key=data.missing_fraction.get)
        line = f"missing in used sensors: {overall * 100:.2f} %"
        if data.missing_fraction[worst] > 0:
            line += f" (most: {worst} {data.missing_fraction[worst] * 100:.1f} %), gaps filled with the last reading"
        out.append(line)
    if data.status is not None:
        by_status = {s: int(np.count_nonzero(data.status == s)) for s in PUMP_STATUSES}
        by_status = {s: n for s, n in by_status.items() if n}
        order = [s for s in PUMP_STATUSES if s in by_status]
        out.append(f"labels ({data.label_column}): " + ", ".join(f"{s} {by_status[s]:,}" for s in order))
    elif data.labels is not None:
        ones = int(data.labels.sum())
        out.append(f"labels ({data.label_column}): normal (0) {data.rows - ones:,}, anomalous (1) {ones:,}")
    else:
        out.append("labels: none")
    if data.notes:
        out.append("notes:")
        out.extend(f"  - {note}" for note in data.notes)
    return "\n".join(out)
