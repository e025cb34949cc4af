"""From the coordinator's choice (``fl/choices.py``) to Flower's strategy object (fl layer; no Qt).

Every strategy is Flower's own; PumpFL only adds two small rules:

- the trimmed mean cuts at least one facility from each end (Flower's cuts
  ``int(fraction * n)``, which is none for fewer than 5 facilities at 0.2);
- with differential privacy the average is unweighted, as Flower's central-DP wrapper assumes
  when it sizes the noise for one facility's clipped change (C / n): weighted by window
  counts, a big facility could move the average by more than that; and n is the number of
  facilities that answered the round, not a number fixed in advance.
"""

from __future__ import annotations

from collections.abc import Callable

from flwr.common import FitRes, Parameters
from flwr.server.strategy import (
    DifferentialPrivacyServerSideFixedClipping,
    FedAdam,
    FedAvg,
    FedMedian,
    FedProx,
    FedTrimmedAvg,
    Strategy,
)

from .protocol import FederationSettings

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
    """Flower's central DP, with the noise sized for the facilities that actually answered.

    One facility moves an average of n by at most clipping_norm / n, so noise of
    noise_multiplier x clipping_norm / n keeps the stated multiplier for any n. Flower's wrapper
    fixes n when it is made; facilities that join or leave would then make the noise too large
    (harmless) or too small (epsilon understated). A round with a failed facility releases no
    model (Flower's rule).
    """

    def aggregate_fit(self, server_round, results, failures):
        self.num_sampled_clients = max(1, len(results))
        return super().aggregate_fit(server_round, results, failures)


def make_strategy(
    s: FederationSettings,
    initial: Parameters,
    config_fn: Callable[[int], dict],
    metrics_fn: Callable[[list], dict],
) -> Strategy:
    common = dict(
        fraction_fit=1.0,
        fraction_evaluate=1.0,
        min_fit_clients=s.min_clients,
        min_evaluate_clients=1,
        min_available_clients=s.min_clients,
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
    return strategy

