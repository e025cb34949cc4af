"""``pumpfl watch``: a saved model watches a CSV, one line per alarm as it happens (cli layer)."""

from __future__ import annotations

import argparse
import time

from ..core.wording import counted
from .common import Console, positive_float, resolve_data


def cmd_watch(args: argparse.Namespace, console: Console) -> int:
    from ..core.model_store import load_detector
    from ..core.watch import Watcher, alarm_line, ended_line, write_alarm_log

    detector = load_detector(args.model)
    watcher = Watcher(detector, resolve_data(args.data, console))
    scored = 0
    try:
        while True:
            update = watcher.poll()
            if update is not None:
                if watcher.warning and update.first_new == 0:
                    console.line(f"warning: {watcher.warning}")
                if update.restarted:
                    console.line("the file is shorter than before (rotated or rewritten): reading it again from its start")
                for alarm in update.started:
                    print(alarm_line(alarm), flush=True)
                for alarm in update.ended:
                    print(ended_line(alarm), flush=True)
                if args.alarms and (update.started or update.ended):
                    write_alarm_log(args.alarms, watcher.alarms)
                scored = update.rows
            if not args.follow:
                break
            time.sleep(args.every)
    except KeyboardInterrupt:
        pass  # --follow ends here: what was found is said below
    ongoing = watcher.alarm
    if ongoing is not None:
        sensors = ", ".join(ongoing.sensors)
        print(f"alarm still on since {ongoing.start_time}: peak {ongoing.peak:.3g}, sensors {sensors}", flush=True)
    if args.alarms:
        write_alarm_log(args.alarms, watcher.alarms)
    ended = "" if args.alarms is None else f"; alarm log {args.alarms}"
    console.line(f"watched {scored:,} rows: {counted(len(watcher.alarms), 'alarm')}{ended}")
    return 0


def add_parsers(sub) -> None:
    watch = sub.add_parser(
        "watch",
        help="watch a CSV with a saved model: one line per alarm (with --follow, as rows are appended)",
    )
    watch.add_argument("--model", required=True, help="a facility's model folder (from a run, or pumpfl train)")
    watch.add_argument("--data", required=True, help="the CSV a historian or logger writes, or a default client number 0-4")
    watch.add_argument("--follow", action="store_true", help="keep reading rows appended to the file until Ctrl+C")
    watch.add_argument("--every", type=positive_float, default=1.0, help="seconds between looks at the file (default 1)")
    watch.add_argument("--alarms", help="keep every alarm in this CSV (start, end, peak error, sensors)")
    watch.set_defaults(func=cmd_watch)
