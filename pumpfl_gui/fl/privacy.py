"""The privacy budget spent so far, from Google's accountant library ``dp-accounting`` (fl; no Qt).

Each DP round releases the average of the facilities' clipped changes plus Gaussian noise of
standard deviation ``noise_multiplier x clipping_norm / n``; one facility moves that average by
at most ``clipping_norm / n``, so every round is a Gaussian mechanism with that noise
multiplier, applied to every facility (no sampling). The rounds compose; the Rényi-DP
accountant (Mironov, 2017) turns the composition into epsilon for the stated delta.

The guarantee is per facility — about everything one facility contributed — and it is central:
the coordinator sees the clipped changes before it adds the noise.
"""

from __future__ import annotations

from collections.abc import Sequence


def epsilon(noise_multipliers: Sequence[float], delta: float) -> float:
    """Epsilon after one DP round per entry (each with its own noise multiplier)."""
    if not noise_multipliers:
        return 0.0
    # Imported here: the library takes about 2 s to load and only DP runs need it.
    from dp_accounting import dp_event
    from dp_accounting.rdp import RdpAccountant

    accountant = RdpAccountant()
    for z in noise_multipliers:
        accountant.compose(dp_event.GaussianDpEvent(float(z)))
    return float(accountant.get_epsilon(delta))
