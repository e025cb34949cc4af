"""``pumpfl train`` and ``pumpfl score``: one facility's detector alone, and scoring a file
(cli layer)."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from ..core.errors import UserError
from ..core.wording import counted
from .common import Console, positive_float, positive_int, resolve_data


def cmd_train(args: argparse.Namespace, console: Console) -> int:
    from ..core.data_fit import spec_for
    from ..core.dataset import load_sensor_csv
    from ..core.detector import LOCAL_TRAINING, Detector
    from ..core.model_spec import ModelSpec
    from ..core.model_store import save_detector
    from ..core.task import TaskState

    path = resolve_data(args.csv, console)
    data = load_sensor_csv(path, state=TaskState(console.progress))
    shape = spec_for(data)  # the shape the data calls for; options override parts of it
    try:
        spec = ModelSpec(
            sensors=len(data.sensors),
            window=args.window or shape.window,
            channels=tuple(args.channels) if args.channels else shape.channels,
            kernel=args.kernel or shape.kernel,
        )
        settings = replace(
            LOCAL_TRAINING,
            lr=args.lr,
            batch_size=args.batch_size,
            seed=args.seed,
            epochs=args.epochs or LOCAL_TRAINING.epochs,
            patience=None if args.no_early_stop else LOCAL_TRAINING.patience,
            **({"stride": args.stride, "max_windows": None} if args.stride else {}),
        )
    except ValueError as exc:
        raise UserError(str(exc)) from None
    console.line(
        f"training on {path.name}: {data.rows:,} rows, {len(data.sensors)} sensors, window {spec.window} rows, "
        f"channels {spec.channels[0]}/{spec.channels[1]}, kernel {spec.kernel}"
    )
    state = TaskState(console.progress)

    def on_epoch(r):
        held = f", held back {r.held_back_loss:.5f}" if r.held_back_loss is not None else ""
        console.line(f"epoch {r.epoch}/{r.epochs}  loss {r.loss:.5f}{held}  ({r.windows:,} windows, {r.seconds:.1f} s)")

    try:
        detector = Detector.fit(data, spec, settings, state=state, on_epoch=on_epoch)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    save_detector(detector, args.out)
    print(f"saved model to {args.out} after {detector.info['epochs_run']} epochs (threshold {detector.threshold:.4f})")
    return 0


def format_metrics(metrics: dict) -> list[str]:
    """A scored file's figures, a line each: failures caught, labelled events, point-wise scores."""
    lines = []
    if "failures" in metrics:
        f = metrics["failures"]
        lead = f"{f['median_lead_hours']:.1f} h" if f["median_lead_hours"] is not None else "-"
        fad = f"{f['false_alarms_per_day']:.2f}" if f["false_alarms_per_day"] is not None else "-"
        lines.append(f"failures caught before BROKEN: {f['caught']} of {f['failures']}, median lead time {lead}")
        for i, one in enumerate(f["per_failure"], 1):
            lead_i = f"{one['lead_hours']:.1f} h ahead" if one["caught"] else "missed"
            lines.append(f"  failure {i} (row {one['row']:,}): {lead_i}")
        lines.append(f"false alarms: {f['false_alarms']} in {f['watched_days']:.1f} watched days = {fad} per day")
    if "label_events" in metrics:
        e = metrics["label_events"]
        lines.append(f"labelled anomaly events with an alarm: {e['detected']} of {e['anomaly_events']}")
    if "pointwise" in metrics:
        p = metrics["pointwise"]
        auc = f"{p['roc_auc']:.3f}" if p["roc_auc"] is not None else "-"
        lines.append(
            f"point-wise: precision {p['precision']:.3f}  recall {p['recall']:.3f}  F1 {p['f1']:.3f}  "
            f"FAR {p['far_pct']:.2f} %  MAR {p['mar_pct']:.2f} %  ROC-AUC {auc}"
        )
    return lines


def cmd_score(args: argparse.Namespace, console: Console) -> int:
    from ..core.dataset import load_sensor_csv
    from ..core.detector import describe_model, score_data
    from ..core.model_store import load_detector
    from ..core.scores_csv import write_scores_csv
    from ..core.task import TaskState
    from ..core.watch import flooded, mismatch

    detector = load_detector(args.model)
    if args.horizon_hours is not None:
        detector.detection = replace(detector.detection, horizon_hours=args.horizon_hours)
    path = resolve_data(args.data, console)
    data = load_sensor_csv(path, sensors=detector.sensors, state=TaskState(console.progress))
    try:
        result = score_data(detector, data, TaskState(console.progress))
    except ValueError as exc:
        raise UserError(str(exc)) from None
    flagged = int(result.flags.sum())
    console.line("")
    doubt = mismatch(detector, data) or flooded(result.flags)
    if doubt:
        console.line(f"warning: {path.name} may not suit this model: {doubt}")
    own = f"{detector.info.get('data_file', 'this facility')}'s rows"
    print("model: " + describe_model(detector.info, own, "the scored file's own normal rows"))
    print(
        f"{path.name}: {data.rows:,} rows scored, {flagged:,} flagged in {counted(len(result.events), 'event')} "
        f"(threshold {result.threshold:.5f})"
    )
    for line in format_metrics(result.metrics):
        print(line)
    if args.out:
        write_scores_csv(Path(args.out), data, result)
        print(f"wrote per-row scores to {args.out}")
    if args.json:
        Path(args.json).write_text(json.dumps(result.metrics, indent=2))
    return 0


def add_parsers(sub) -> None:
    train = sub.add_parser("train", help="train one facility's detector alone (the local baseline)")
    train.add_argument("csv", help="CSV file, or a default client number 0-4")
    train.add_argument("--out", required=True, help="model folder to write")
    train.add_argument(
        "--epochs", type=positive_int, help="most epochs (default 100, stopping early once the held-back loss stops falling)"
    )
    train.add_argument("--no-early-stop", action="store_true", help="train every epoch, holding nothing back")
    train.add_argument("--lr", type=positive_float, default=1e-3)
    train.add_argument("--batch-size", type=positive_int, default=32)
    train.add_argument("--window", type=positive_int, help="rows per window (default: about a minute of readings, at least 32)")
    train.add_argument(
        "--channels", type=positive_int, nargs=2, metavar=("C1", "C2"), help="default: 32 16 for up to 16 sensors, else 16 4"
    )
    train.add_argument("--kernel", type=positive_int, help="convolution kernel, odd (default: 7 for up to 16 sensors, else 3)")
    train.add_argument(
        "--stride", type=positive_int, help="step between training windows (default: every window, at most 4,000 an epoch)"
    )
    train.add_argument("--seed", type=int, default=0)
    train.set_defaults(func=cmd_train)

    score = sub.add_parser("score", help="flag anomalies in a CSV with a trained model")
    score.add_argument("--model", required=True, help="model folder (from train or a federation)")
    score.add_argument("--data", required=True, help="CSV file, or a default client number 0-4")
    score.add_argument("--out", help="write per-row scores and flags to this CSV")
    score.add_argument("--json", help="write the metrics to this JSON file")
    score.add_argument(
        "--horizon-hours",
        type=positive_float,
        help="how long before a failure an alarm counts as a catch (default: the model's, 24)",
    )
    score.set_defaults(func=cmd_score)
