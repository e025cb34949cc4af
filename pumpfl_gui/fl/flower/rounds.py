"""The coordinator's side of a round, through Flower's legacy strategy and client proxies
(fl/flower; the round loop itself, ``fl/server_runner.py``, sees only PumpFL's types).

:class:`FlowerRounds` holds the global parameters and the strategy the settings chose
(``strategies.py``): :meth:`~FlowerRounds.train` sends every connected facility its
instruction at once and collects the answers (:class:`~pumpfl_gui.fl.messages.Answer`, and why
each missing one is missing), :meth:`~FlowerRounds.combine` aggregates them,
:meth:`~FlowerRounds.evaluate` asks for the global model's loss. :func:`tell` and
:func:`let_go` speak to one facility outside the rounds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field

import numpy as np
from flwr.common import (
    Code,
    FitIns,
    GetPropertiesIns,
    Parameters,
    ReconnectIns,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)

from .. import protocol as P
from ..messages import Answer
from ..protocol import FederationSettings, model_digest
from .strategies import make_strategy


@dataclass
class Asked:
    """One instruction to every facility: the answers, and {cid: why there is none}."""

    answers: list[Answer] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)
    raw: list = field(default_factory=list)  # Flower's (proxy, result) pairs, for the strategy
    failures: int = 0  # after combining: answers missing or dropped by the checks


class FlowerRounds:
    def __init__(
        self,
        settings: FederationSettings,
        manager,
        arrays: list[np.ndarray],
        config: Callable[[int], dict],
        on_dropped: Callable[[int, str, str], None],
        check_stop: Callable[[], None],
        busy: dict[str, Future],
    ) -> None:
        self.settings = settings
        self.manager = manager
        self._check_stop = check_stop
        self.parameters = ndarrays_to_parameters(arrays)
        self.strategy = make_strategy(settings, self.parameters, config, _no_metrics, manager.samples.get, on_dropped)
        self.busy = busy  # cid -> the facility's answer being awaited (the caller's, to wait on at the end)
        self.held: dict[str, str] = {}  # cid -> digest of the global model it evaluated last (and so holds)

    @property
    def arrays(self) -> list[np.ndarray]:
        return parameters_to_ndarrays(self.parameters)

    def train(self, rnd: int) -> Asked:
        instructions = self.strategy.configure_fit(server_round=rnd, parameters=self.parameters, client_manager=self.manager)
        digests: dict[int, str] = {}  # the strategy hands every facility the same parameters: one digest a round
        for _, ins in instructions:
            if id(ins.parameters) not in digests:
                digests[id(ins.parameters)] = model_digest(parameters_to_ndarrays(ins.parameters))
        lighter = [self._lighter(proxy, ins, digests[id(ins.parameters)]) for proxy, ins in instructions]
        asked = self._ask_all(lighter, "fit", rnd)
        asked.answers = _trained(asked.raw)
        for cid in asked.missing:  # one that failed may have lost what it held: the whole model next time
            self.held.pop(cid, None)
        return asked

    def _lighter(self, proxy, ins: FitIns, digest: str) -> tuple:
        """The instruction without the model when the facility holds it already: it evaluated
        these very parameters (``digest``) at the end of the last round, or built them as the
        starting model (P.CFG_HELD names them)."""
        start = getattr(self.manager, "start_models", {}).get(proxy.cid)
        if digest not in (self.held.get(proxy.cid), start):
            return proxy, ins
        empty = Parameters(tensors=[], tensor_type=ins.parameters.tensor_type)
        return proxy, FitIns(empty, {**ins.config, P.CFG_HELD: digest})

    def combine(self, rnd: int, trained: Asked) -> bool:
        """Aggregate the round's answers into the global model; False when none came of it (a
        DP round that released nothing, or every answer dropped by the checks). The answers
        that fail the checks (``fl/update_check.py``) leave ``trained.answers``."""
        failures = [RuntimeError(why) for why in trained.missing.values()]
        new, _ = self.strategy.aggregate_fit(rnd, trained.raw, failures)  # drops failed answers from raw
        trained.answers = _trained(trained.raw)
        trained.failures = len(failures)  # the dropped answers were added to failures
        if new is None:
            return False
        self.parameters = new
        return True

    def evaluate(self, rnd: int) -> tuple[Asked, float | None]:
        """Ask whoever is connected now (it never waits for the minimum) for the global model's
        loss: the answers and the aggregated loss (None without answers)."""
        instructions = self.strategy.configure_evaluate(server_round=rnd, parameters=self.parameters, client_manager=self.manager)
        asked = self._ask_all(instructions, "evaluate", rnd)
        if not asked.raw:
            return asked, None
        # The checks drop unusable answers from raw (fl/update_check.py) before they count.
        loss, _ = self.strategy.aggregate_evaluate(rnd, asked.raw, [RuntimeError(w) for w in asked.missing.values()])
        asked.answers = [Answer(p.cid, int(r.num_examples), dict(r.metrics), float(r.loss)) for p, r in asked.raw]
        digest = model_digest(self.arrays)
        self.held = {p.cid: digest for p, _ in asked.raw}  # these hold the model now
        return asked, None if loss is None else float(loss)

    def _ask_all(self, instructions: list, method: str, rnd: int) -> Asked:
        """Send each facility its instruction at once and collect the answers. A facility that
        leaves is out at once (its connection closes, or gRPC keepalive notices a silent one
        within about 10 s); the others' answers are not held up by it. ``check_stop`` may end
        the wait at any moment by raising."""
        timeout = self.settings.round_timeout
        pool = ThreadPoolExecutor(max_workers=max(1, len(instructions)), thread_name_prefix=f"pumpfl-{method}")
        asked: dict = {}
        t0 = time.monotonic()
        for proxy, ins in instructions:
            future = pool.submit(getattr(proxy, method), ins, timeout, rnd)
            asked[future] = proxy
            self.busy[proxy.cid] = future
        pool.shutdown(wait=False)
        out = Asked()
        pending = set(asked)
        while pending:
            done, pending = wait_futures(pending, timeout=0.5)
            for future in done:
                proxy = asked[future]
                failure = future.exception()
                if failure is None and future.result().status.code == Code.OK:
                    out.raw.append((proxy, future.result()))
                elif failure is None:
                    out.missing[proxy.cid] = f"answered with an error: {future.result().status.message}"
                elif time.monotonic() - t0 >= timeout - 1:
                    out.missing[proxy.cid] = f"did not answer within {timeout:.0f} s"
                else:
                    out.missing[proxy.cid] = "left during the round (connection closed)"
            self._check_stop()
        return out


def tell(proxy, config: dict, timeout: float) -> None:
    """Say something to one facility (P.AGREED_THRESHOLD, P.END_REASON); raises on failure."""
    proxy.get_properties(GetPropertiesIns(config), timeout, None)


def let_go(proxy, timeout: float) -> None:
    """Let one facility go (it closes its stream); raises on failure."""
    proxy.reconnect(ReconnectIns(seconds=None), timeout, None)


def _trained(raw: list) -> list[Answer]:
    return [Answer(p.cid, int(r.num_examples), dict(r.metrics)) for p, r in raw]


def _no_metrics(_results) -> dict:
    return {}  # per-facility figures are recorded individually in the history
