"""``PumpFL --self-test``: prove that every piece the app needs is present and works (fl layer).

Runs a real 2-round federation of two default facilities on loopback, with TLS and a join code,
exactly as two sites would: the server runner, two client runners, gRPC, Flower, torch,
pandas, the certificate code. Inside a frozen bundle this is the check that nothing was left
out; in a checkout it is a quick end-to-end check. The GUI layer adds its own Qt checks.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..core.dataset import load_sensor_csv
from ..core.paths import default_client_csv
from ..core.simulator import ensure_default_data
from .events import Event, Failed, Finished, RoundFinished, ServerListening
from .loopback_federation import LoopbackFederation
from .privacy import epsilon
from .protocol import FederationSettings

ROUNDS = 2
FACILITIES = (0, 1)


@dataclass
class SelfTestResult:
    ok: bool
    message: str  # one line: "self-test passed: …" or "self-test failed: <why>"


def component_versions() -> dict[str, str]:
    import importlib.metadata as md

    import grpc
    import numpy
    import pandas
    import polars
    import sklearn
    import torch

    from .. import __version__
    from . import flower

    return {
        "PumpFL": __version__,
        **flower.versions(),
        "torch": torch.__version__,
        "grpcio": grpc.__version__,
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "polars": polars.__version__,
        "scikit-learn": sklearn.__version__,
        "dp-accounting": md.version("dp-accounting"),
    }


def run_self_test(say: Callable[[str], None] = print, out_dir: Path | None = None) -> SelfTestResult:
    t0 = time.perf_counter()
    try:
        versions = component_versions()
    except Exception as exc:  # a missing module or missing package metadata in a bundle
        return SelfTestResult(False, f"self-test failed: a component is missing: {type(exc).__name__}: {exc}")
    say("components: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    try:
        spent = epsilon([1.0] * 10, 1e-5)  # the accountant loads only for DP runs: prove it is here
    except Exception as exc:
        return SelfTestResult(False, f"self-test failed: the privacy accountant does not work: {type(exc).__name__}: {exc}")
    say(f"privacy accountant: epsilon {spent:.2f} after 10 rounds at noise multiplier 1 (delta 1e-5)")
    folder = ensure_default_data(progress=lambda text, _fraction: None)
    say(f"default data: {folder}")
    try:  # long files are read a batch at a time by polars, loaded only then: prove it is here
        read = load_sensor_csv(default_client_csv(FACILITIES[0], folder), batches=True)
    except Exception as exc:
        return SelfTestResult(False, f"self-test failed: the long-file reader does not work: {type(exc).__name__}: {exc}")
    say(f"long-file reader: {read.rows:,} rows of {read.path.name} a batch at a time")
    out = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="pumpfl-self-test-"))
    losses: list[float] = []
    secured = []

    def on_event(who: str, e: Event) -> None:
        match e:
            case ServerListening() if who == "server":
                secured.append("code=" in e.invite and "fp=" in e.invite)
                say(f"server listening on {e.address} (TLS and join code: {'yes' if secured[-1] else 'no'})")
            case RoundFinished() if who == "server":
                losses.append(e.eval_loss)
                say(f"round {e.round}/{e.rounds}: eval loss {e.eval_loss:.4f}, {e.seconds:.1f} s")
            case Failed():
                say(f"{who}: {e.message}")

    settings = FederationSettings(rounds=ROUNDS, min_clients=len(FACILITIES), local_epochs=1)
    csvs = [default_client_csv(i, folder) for i in FACILITIES]
    result = LoopbackFederation(settings, csvs, out, on_event).run()
    seconds = time.perf_counter() - t0
    ok = isinstance(result, Finished) and result.rounds_completed == ROUNDS and len(losses) == ROUNDS and all(secured)
    if ok:
        message = f"self-test passed: {ROUNDS} rounds with {len(FACILITIES)} facilities over TLS in {seconds:.1f} s"
    elif not isinstance(result, Finished):
        message = f"self-test failed: {result.message}"
    else:
        message = f"self-test failed: {len(losses)} of {ROUNDS} rounds completed"
    return SelfTestResult(ok, message)
