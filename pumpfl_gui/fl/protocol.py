"""What server and facilities say to each other, beyond Flower's own framing (fl layer; no Qt).

Everything a facility may send is listed here: model parameters (arrays of the model's shapes)
and the scalar metrics in the whitelists below. The privacy test checks every outgoing message
against exactly these lists.
"""

from __future__ import annotations

import hashlib
import json
import math
import unicodedata
from dataclasses import asdict, dataclass

import numpy as np

from ..core.model import build_model, get_parameters
from ..core.model_spec import ModelSpec
from ..core.training import TrainSettings
from . import limits
from .choices import check_choice

PROTOCOL_VERSION = 2  # 2: mutual proof bound to the TLS channel, nothing about the federation before it

# Server -> facility, in each round's config.
CFG_ROUND = "round"
CFG_ROUNDS = "rounds"  # how many rounds the run has, for the facility's progress bar
CFG_EPOCHS = "local_epochs"
CFG_LR = "lr"
CFG_BATCH = "batch_size"
CFG_STRIDE = "stride"
CFG_STRATEGY = "strategy"  # how the server combines updates (fl/choices.py), for the facility to show
CFG_MU = "proximal_mu"  # FedProx's proximal term (the key Flower's FedProx strategy sets)
CFG_SCALER = "shared_scaler"  # JSON of the agreed scaler, with shared scaling on
CFG_SKETCH = "error_sketch"  # 1: send your errors' quantiles with this evaluation (shared threshold)
# Train from the global model you evaluated last (its digest here; the instruction carries no
# model): each facility receives the model once a round, not twice.
CFG_HELD = "start_from_held"
AGREED_THRESHOLD = "agreed_threshold"  # get_properties after the last round: the shared threshold
END_REASON = "end_reason"  # get_properties before the server lets a facility go: JSON of why the run ends

# Facility -> server: the only scalar metrics ever sent.
FIT_METRICS = frozenset({"train_loss", "epochs", "seconds"})
EVAL_METRICS = frozenset({"eval_loss", "error_sketch"})  # error_sketch: counts and quantiles

# Handshake (get_properties), in four messages; fl/handshake.py builds and reads them. A refusal
# ends the stream with PERMISSION_DENIED and the reason in words as the stream's status.
# 1. Server -> facility: only the protocol version and a nonce.
HELLO_PROTOCOL = "pumpfl_protocol"
HELLO_NONCE = "nonce"  # hex
# 2. Facility -> server: which invite it holds, its nonce, its name and its proof.
REPLY_KEY_ID = "key_id"  # derived from the join code (security.invite_key_id), never the code
REPLY_NONCE = "facility_nonce"  # hex
REPLY_NAME = "name"
REPLY_PROOF = "proof"  # HMAC(code, "facility"|both nonces|certificate fingerprint it sees)
REPLY_PROBE = "probe"  # 1: only checking the join code ("Test connection"); do not enrol me
# 3. Server -> facility, only once the facility's proof checks out: the server's own proof, then
#    the federation's sensors and spec (or, to a probe, HELLO_PROBE_OK).
HELLO_SERVER_PROOF = "server_proof"  # HMAC(code, "server"|both nonces|fingerprint)
HELLO_SENSORS = "sensors"  # JSON list the federation uses ("" while the first facility defines it)
HELLO_SPEC = "spec"  # JSON of the model spec ("" likewise)
HELLO_PROBE_OK = "probe_ok"  # the server's answer to a probe whose join code is right
# 4. Facility -> server, only once the server's proof checks out (names and counts — never
# a reading).
REPLY_SENSORS = "sensors"
REPLY_SAMPLES = "samples"
REPLY_PROBLEM = "problem"  # non-empty when the facility's data does not fit the federation
REPLY_STATS = "scaling_stats"  # with shared scaling: per-sensor counts, means, variances (core/pooling.py)
REPLY_SPEC = "model_spec"  # JSON window/channels/kernel the facility's data calls for (ModelSpec.for_data)
# The digest of the starting model this facility built from the hello's START_SEED: a facility
# that holds exactly the coordinator's starting model is not sent it in round 1.
REPLY_START = "start_model"
START_SEED = "start_seed"  # in the hello's spec: the seed the coordinator builds its starting model with
SEEDS = (0, 2**31 - 1)
PROPERTY_KEYS = frozenset(
    {
        REPLY_KEY_ID,
        REPLY_NONCE,
        REPLY_PROOF,
        REPLY_NAME,
        REPLY_SENSORS,
        REPLY_SAMPLES,
        REPLY_PROBLEM,
        REPLY_PROBE,
        REPLY_STATS,
        REPLY_SPEC,
        REPLY_START,
        HELLO_PROTOCOL,
    }
)
NAME_LIMIT = 64  # characters of a facility's name that reach logs, tables and files
SHAPE_KEYS = ("window", "channels", "kernel")


@dataclass(frozen=True)
class FederationSettings:
    """What the coordinator decides for everyone (the facilities learn it from the server)."""

    rounds: int = 10
    min_clients: int = 2
    local_epochs: int = 3
    lr: float = 1e-3
    batch_size: int = 256
    stride: int = 4
    # The network's shape; None: follow the data (ModelSpec.for_data on the facilities' readings).
    window: int | None = None
    channels: tuple[int, int] | None = None
    kernel: int | None = None
    round_timeout: float = 600.0  # seconds a round may wait for a facility's answer
    join_timeout: float = 3600.0  # seconds the server waits for the minimum of facilities
    # How updates are combined (fl/flower/strategies.py) and that strategy's own setting.
    strategy: str = "fedavg"
    proximal_mu: float = 0.01  # fedprox
    server_lr: float = 0.03  # fedadam (fl/flower/strategies.py: how it was chosen)
    trim_fraction: float = 0.2  # trimmed
    # Differential privacy (fl/privacy.py): None is off.
    dp_noise_multiplier: float | None = None
    dp_clipping_norm: float = 1.0
    dp_delta: float = 1e-5
    shared_scaling: bool = False  # scaler and threshold agreed from per-facility aggregates

    def __post_init__(self) -> None:
        if self.rounds < 1 or self.min_clients < 1 or self.local_epochs < 1:
            raise ValueError("rounds, minimum clients and local epochs must be at least 1")
        TrainSettings(
            epochs=self.local_epochs, lr=self.lr, batch_size=self.batch_size, stride=self.stride, proximal_mu=self.proximal_mu
        )
        # The same bounds every facility checks on what it receives (fl/limits.py).
        limits.check_rounds(self.rounds)
        if self.min_clients > limits.FACILITIES[1]:
            raise ValueError(
                f"a coordinator admits at most {limits.FACILITIES[1]} facilities at once; {self.min_clients} could never all join"
            )
        limits.check_training(self.local_epochs, self.lr, self.batch_size, self.stride, self.proximal_mu)
        if self.window is not None:
            shape = self.shape()
            limits.check_shape(shape["window"], shape["channels"], shape["kernel"])
        check_choice(self)

    def shape(self) -> dict | None:
        """The network's shape the coordinator fixed, or None to follow the facilities' data."""
        if self.window is None:
            return None
        default = ModelSpec(sensors=1, window=self.window)
        return {
            "window": self.window,
            "channels": list(self.channels or default.channels),
            "kernel": int(self.kernel or default.kernel),
        }

    def hello_spec(self) -> dict:
        """What each facility builds, sent in the handshake."""
        spec = dict(self.shape() or {})
        if self.shared_scaling:
            spec["shared_scaling"] = 1
        return spec

    def round_config(self, server_round: int) -> dict:
        return {
            CFG_ROUND: server_round,
            CFG_ROUNDS: self.rounds,
            CFG_EPOCHS: self.local_epochs,
            CFG_LR: self.lr,
            CFG_BATCH: self.batch_size,
            CFG_STRIDE: self.stride,
            CFG_STRATEGY: self.strategy,
        }

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels) if self.channels is not None else None
        return d


def spec_from_shape(sensors: int, shape: dict) -> ModelSpec:
    """A ModelSpec from a shape dict (window, channels, kernel); ValueError when malformed."""
    try:
        channels = tuple(int(c) for c in shape["channels"])
        if len(channels) != 2:
            raise ValueError("two channel counts expected")
        return ModelSpec(sensors=sensors, window=int(shape["window"]), channels=channels, kernel=int(shape["kernel"]))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed model shape ({exc})") from None


def round_number(config: dict, key: str, default: int | None = None) -> int:
    """A whole number from a round's settings, within 0 and the most rounds a run may have;
    ValueError, in words, otherwise."""
    try:
        value = int(config[key]) if default is None or key in config else default
    except (KeyError, TypeError, ValueError, OverflowError):
        raise ValueError(f"round settings without a usable {key!r}") from None
    if not 0 <= value <= limits.ROUNDS[1]:
        raise ValueError(f"round settings with {key!r} {value}, outside 0-{limits.ROUNDS[1]:,}")
    return value


def starting_model(spec: ModelSpec | None, hello_spec: dict) -> list[np.ndarray] | None:
    """The coordinator's starting model, built from the seed its hello names (START_SEED), or
    None without a usable one."""
    seed = hello_spec.get(START_SEED)
    if spec is None or not isinstance(seed, int) or isinstance(seed, bool) or not SEEDS[0] <= seed <= SEEDS[1]:
        return None
    return get_parameters(build_model(spec, seed))


def shape_of(spec: ModelSpec) -> dict:
    return {"window": spec.window, "channels": list(spec.channels), "kernel": spec.kernel}


def train_settings_from_config(config: dict, seed: int = 0) -> TrainSettings:
    """A round's training settings as the server sent them; ValueError, in words, when one is
    missing, malformed or out of bounds (fl/limits.py)."""
    try:
        epochs, lr, batch, stride = (
            int(config[CFG_EPOCHS]),
            float(config[CFG_LR]),
            int(config[CFG_BATCH]),
            int(config[CFG_STRIDE]),
        )
        rnd, mu = int(config[CFG_ROUND]), float(config.get(CFG_MU, 0.0))
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"malformed round settings ({type(exc).__name__}: {exc})") from None
    limits.check_training(epochs, lr, batch, stride, mu)
    return TrainSettings(epochs=epochs, lr=lr, batch_size=batch, stride=stride, seed=seed + rnd, proximal_mu=mu)


def dumps(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def clean_name(text: object, limit: int = NAME_LIMIT) -> str:
    """A name that came from a peer, fit for logs, tables and files: control and format
    characters (newlines, escapes, bidi overrides) become spaces, runs of spaces one, at most
    ``limit`` characters. Anything but a string becomes ""."""
    if not isinstance(text, str):
        return ""
    kept = "".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in text[: limit * 4])
    return " ".join(kept.split())[:limit]


def read_federation(config: dict) -> tuple[list[str] | None, dict]:
    """The sensors (None: the facility's own define them) and the spec a server's hello names;
    ValueError for anything else."""
    try:
        announced = config.get(HELLO_SENSORS, "")
        wanted = json.loads(announced) if announced else None
        spec = json.loads(config.get(HELLO_SPEC) or "{}")
    except (TypeError, RecursionError) as exc:
        raise ValueError(str(exc)) from None
    sensors_ok = wanted is None or (isinstance(wanted, list) and all(isinstance(s, str) for s in wanted))
    if not isinstance(spec, dict) or not sensors_ok:
        raise ValueError("not a sensor list and a spec")
    return wanted, spec


_NO_REASON = {"outcome": "failed", "resumable": True, "rounds": 0, "message": "the server ended the run without a clear reason"}


def read_end_reason(text) -> dict:
    """The server's word on why the run ends (END_REASON), cleaned; a malformed one counts as
    none (a resumable failure: the facility keeps waiting)."""
    try:
        end = json.loads(str(text))
        if not isinstance(end, dict) or end.get("outcome") not in ("completed", "stopped", "failed"):
            return dict(_NO_REASON)
        end["message"] = "".join(ch for ch in str(end.get("message", "")) if ch.isprintable())[:500]
        for key in ("round", "rounds", "completed"):
            end[key] = max(0, int(end.get(key, 0)))
        return end
    except (ValueError, TypeError, OverflowError, RecursionError):
        return dict(_NO_REASON)


def read_threshold(value) -> float | None:
    """An agreed anomaly threshold as the coordinator sent it, or None unless it is a positive
    finite number: a NaN threshold would silence every alarm (``score > nan`` is false)."""
    try:
        threshold = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return threshold if math.isfinite(threshold) and threshold > 0 else None


DIGEST_LENGTH = 32


def model_digest(arrays) -> str:
    """A short fingerprint of a model's arrays (dtype, shape and values), the same on both sides."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:DIGEST_LENGTH]
