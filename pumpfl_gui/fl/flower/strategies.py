"""From the coordinator's choice (``fl/choices.py``) to Flower's strategy object (fl layer; no Qt).

Every strategy is Flower's own; PumpFL adds a check in front of each and two small rules:

- every answer is checked before it counts (``fl/update_check.py``): one that fails is moved to
  the round's failures and its facility dropped by name (``on_drop``), so no strategy — median
  and trimmed mean included — ever sees a NaN, a wrong shape or an inflated sample count;

- the trimmed mean cuts at least one facility from each end (Flower's cuts
  ``int(fraction * n)``, which is none for fewer than 5 facilities at 0.2);
- with differential privacy the average is unweighted, as Flower's central-DP wrapper assumes
  when it sizes the noise for one facility's clipped change (C / n): weighted by window
  counts, a big facility could move the average by more than that; and n is the number of
  facilities whose answers counted in the round, not a number fixed in advance.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from flwr.common import FitRes, Parameters, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server.strategy import (
    DifferentialPrivacyServerSideFixedClipping,
    FedAdam,
    FedAvg,
    FedMedian,
    FedProx,
    FedTrimmedAvg,
    Strategy,
)

from ..protocol import FederationSettings
from ..update_check import check_evaluate, check_fit, outlying_norms, update_norm

# on_drop(round, cid, reason): a facility's answer failed the checks and is out of the round.
OnDrop = Callable[[int, str, str], None]

# FedAdam (Reddi et al., 2021, "Adaptive Federated Optimization"), as measured on three default
# facilities, 10 rounds x 3 local epochs (held-out loss after round 10; FedAvg 0.218):
# - Flower's defaults (tau 1e-9, beta_1 0.9) make every step about +-lr for every weight that
#   moved at all;
# - with server momentum (beta_1 0.9) the loss fell for 6-8 rounds, then climbed again at every
#   server learning rate tried (0.01: 0.51 -> 0.75, 0.03: 0.48 -> 5.96, 0.1 with tau 0.1:
#   0.38 -> 0.87);
# - without it (beta_1 0) it fell every round: 0.269 at 0.03 with tau 0.01, 0.415 at 0.01 with
#   tau 0.001.
# Each facility already trains with Adam; momentum on top of that overshoots.
FEDADAM_TAU = 1e-2
FEDADAM_BETA_1 = 0.0


class _TrimmedMean(FedTrimmedAvg):
    def aggregate_fit(self, server_round, results, failures):
        wanted = self.beta
        if len(results) >= 3:
            # at least one from each end, never half or more
            self.beta = min(max(wanted, 1.0 / len(results) + 1e-9), 0.5 - 1e-9)
        try:
            return super().aggregate_fit(server_round, results, failures)
        finally:
            self.beta = wanted


class _Unweighted:
    """Aggregate as if every facility had the same number of windows."""

    def aggregate_fit(self, server_round, results, failures):
        equal = [(proxy, FitRes(res.status, res.parameters, 1, res.metrics)) for proxy, res in results]
        return super().aggregate_fit(server_round, equal, failures)


class _UnweightedFedAvg(_Unweighted, FedAvg):
    pass


class _UnweightedFedProx(_Unweighted, FedProx):
    pass


class _CentralDP(DifferentialPrivacyServerSideFixedClipping):
    """Flower's central DP, with the noise sized for the facilities whose answers counted.

    One facility moves an average of n by at most clipping_norm / n, so noise of
    noise_multiplier x clipping_norm / n keeps the stated multiplier for any n. Flower's wrapper
    fixes n when it is made; facilities that join or leave would then make the noise too large
    (harmless) or too small (epsilon understated). Flower's wrapper also releases nothing when
    any facility failed; here a dropped or lost facility contributes nothing and needs no noise,
    so the round releases the others' average (else one bad facility would freeze the model).
    An unchanged model (a zero change) is kept as it is: Flower's clipping divides by its norm.
    """

    def aggregate_fit(self, server_round, results, failures):
        self.num_sampled_clients = max(1, len(results))
        if not results:
            return None, {}
        for _, res in results:
            res.parameters = ndarrays_to_parameters(
                _clipped(parameters_to_ndarrays(res.parameters), self.current_round_params, self.clipping_norm)
            )
        aggregated, metrics = self.strategy.aggregate_fit(server_round, results, [])
        if aggregated is not None:
            sd = self.noise_multiplier * self.clipping_norm / self.num_sampled_clients
            noisy = [a + np.random.normal(0.0, sd, a.shape).astype(a.dtype) for a in parameters_to_ndarrays(aggregated)]
            aggregated = ndarrays_to_parameters(noisy)
        return aggregated, metrics


def _clipped(arrays: list[np.ndarray], start: list[np.ndarray], clipping_norm: float) -> list[np.ndarray]:
    """``start`` plus the change ``arrays - start`` scaled down to at most ``clipping_norm``."""
    change = [a - s for a, s in zip(arrays, start)]
    norm = float(np.sqrt(sum(float(np.sum(c.astype(np.float64) ** 2)) for c in change)))
    factor = min(1.0, clipping_norm / norm) if norm > 0 else 1.0
    return [(s + c * factor).astype(a.dtype) for a, s, c in zip(arrays, start, change)]


class _Checked(Strategy):
    """Any strategy, fed only answers that pass ``fl/update_check.py``.

    A failing answer moves — in place, so the server's own lists agree — from the round's
    results to its failures, and ``on_drop(round, cid, reason)`` names the facility.
    ``registered(cid)`` is the number of training windows the facility registered at join.
    """

    def __init__(self, inner: Strategy, registered: Callable[[str], int | None], on_drop: OnDrop) -> None:
        self.inner = inner
        self.registered = registered
        self.on_drop = on_drop
        self._global: list[np.ndarray] = []  # the parameters this round's answers started from

    def __getattr__(self, name):  # what PumpFL reads of the inner strategy (e.g. FedAdam's state)
        if "inner" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.__dict__["inner"], name)

    def __repr__(self) -> str:
        return f"checked {self.inner!r}"

    def initialize_parameters(self, client_manager):
        return self.inner.initialize_parameters(client_manager)

    def configure_fit(self, server_round, parameters, client_manager):
        self._global = parameters_to_ndarrays(parameters)
        return self.inner.configure_fit(server_round, parameters, client_manager)

    def configure_evaluate(self, server_round, parameters, client_manager):
        return self.inner.configure_evaluate(server_round, parameters, client_manager)

    def evaluate(self, server_round, parameters):
        return self.inner.evaluate(server_round, parameters)

    def aggregate_fit(self, server_round, results, failures):
        problems, norms = {}, {}
        for proxy, res in results:
            try:
                arrays = parameters_to_ndarrays(res.parameters)
            except Exception as exc:  # bytes that are no arrays at all
                problems[proxy.cid] = f"its parameters cannot be read ({type(exc).__name__})"
                continue
            problem = check_fit(arrays, self._global, res.num_examples, res.metrics, self.registered(proxy.cid))
            if problem:
                problems[proxy.cid] = problem
            else:
                norms[proxy.cid] = update_norm(arrays, self._global)
        problems.update(outlying_norms(norms))
        self._drop(server_round, results, failures, problems)
        return self.inner.aggregate_fit(server_round, results, failures)

    def aggregate_evaluate(self, server_round, results, failures):
        problems = {}
        for proxy, res in results:
            problem = check_evaluate(res.loss, res.num_examples, res.metrics, self.registered(proxy.cid))
            if problem:
                problems[proxy.cid] = problem
        self._drop(server_round, results, failures, problems)
        return self.inner.aggregate_evaluate(server_round, results, failures)

    def _drop(self, server_round: int, results: list, failures: list, problems: Mapping[str, str]) -> None:
        if not problems:
            return
        kept = [(proxy, res) for proxy, res in results if proxy.cid not in problems]
        failures.extend((proxy, res) for proxy, res in results if proxy.cid in problems)
        results[:] = kept
        for cid, reason in problems.items():
            self.on_drop(server_round, cid, reason)


def make_strategy(
    s: FederationSettings,
    initial: Parameters,
    config_fn: Callable[[int], dict],
    metrics_fn: Callable[[list], dict],
    registered: Callable[[str], int | None],
    on_drop: OnDrop,
) -> Strategy:
    """The coordinator's chosen strategy, with DP when asked, behind the answer checks.

    ``registered(cid)``: the training windows a facility registered when it joined;
    ``on_drop(round, cid, reason)``: called for each answer that fails the checks.
    """
    common = dict(
        fraction_fit=1.0,
        fraction_evaluate=1.0,
        # Training and evaluation ask whoever is connected; the runner waits for the minimum
        # before each round itself (with a countdown) and judges the answers it got, so
        # Flower's sampling never waits.
        min_fit_clients=1,
        min_evaluate_clients=1,
        min_available_clients=1,
        on_fit_config_fn=config_fn,
        on_evaluate_config_fn=config_fn,
        initial_parameters=initial,
        accept_failures=True,
        fit_metrics_aggregation_fn=metrics_fn,
        evaluate_metrics_aggregation_fn=metrics_fn,
    )
    private = s.dp_noise_multiplier is not None
    if s.strategy == "fedavg":
        strategy = (_UnweightedFedAvg if private else FedAvg)(**common)
    elif s.strategy == "fedprox":
        strategy = (_UnweightedFedProx if private else FedProx)(**common, proximal_mu=s.proximal_mu)
    elif s.strategy == "fedadam":
        strategy = FedAdam(**common, eta=s.server_lr, eta_l=s.lr, tau=FEDADAM_TAU, beta_1=FEDADAM_BETA_1)
    elif s.strategy == "median":
        strategy = FedMedian(**common)
    elif s.strategy == "trimmed":
        strategy = _TrimmedMean(**common, beta=s.trim_fraction)
    else:  # FederationSettings refuses any other name
        raise ValueError(f"unknown strategy {s.strategy!r}")
    if private:
        strategy = _CentralDP(strategy, s.dp_noise_multiplier, s.dp_clipping_norm, s.min_clients)
    return _Checked(strategy, registered, on_drop)
