"""A score's figures as short HTML lines for the text under the anomaly view (gui layer)."""

from __future__ import annotations


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
            # One failure caught has a warning time; several have a median one.
            lead = "Median warning time" if f.get("caught", 0) > 1 else "Warning time"
            lines.append(f"<b>{lead}:</b> {_fmt(f.get('median_lead_hours'), '.1f', ' h')}")
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
