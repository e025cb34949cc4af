"""Plain event objects that runners report (fl layer; no Qt).

The CLI prints them, the GUI re-emits them as Qt signals, tests collect them. Each is a small
frozen dataclass; ``kind`` names it for logs and JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Event:
    @property
    def kind(self) -> str:
        return type(self).__name__

    def to_dict(self) -> dict:
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True)
class ServerListening(Event):
    address: str
    invite: str = field(repr=False)  # holds the join code: never in a log line
    out_dir: str = ""
    fingerprint: str | None = None


@dataclass(frozen=True)
class ClientJoined(Event):
    cid: str
    name: str
    peer: str
    samples: int


@dataclass(frozen=True)
class ClientRefused(Event):
    peer: str
    name: str
    reason: str


@dataclass(frozen=True)
class ClientLeft(Event):
    cid: str
    name: str


@dataclass(frozen=True)
class FacilityDropped(Event):
    """A facility's answer failed the server's checks (or never came): it is out of this round."""

    round: int
    name: str
    reason: str


@dataclass(frozen=True)
class Waiting(Event):
    """The run waits for facilities: ``detail`` says for whom, ``seconds_left`` until it
    gives up."""

    needed: int
    connected: int
    seconds_left: float
    detail: str = ""


@dataclass(frozen=True)
class RoundStarted(Event):
    round: int
    rounds: int
    participants: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class EpochLoss(Event):
    round: int
    epoch: int
    epochs: int
    loss: float


@dataclass(frozen=True)
class FitResult(Event):
    round: int
    name: str
    samples: int
    train_loss: float
    seconds: float
    rounds: int = 0  # rounds in the run, when the server said
    strategy: str = ""  # how the server combines updates (fl/choices.py), as it said
    proximal_mu: float = 0.0  # FedProx's pull towards the shared model, as the server set it


@dataclass(frozen=True)
class RoundFinished(Event):
    round: int
    rounds: int
    train_loss: float | None
    eval_loss: float | None
    per_client: dict = field(default_factory=dict)  # name -> {"train_loss", "eval_loss", "samples"}
    bytes_sent: int = 0
    bytes_received: int = 0
    seconds: float = 0.0
    epsilon: float | None = None  # with differential privacy: spent so far (for the run's delta)
    agreed_threshold: float | None = None  # with shared scaling, after the last round


@dataclass(frozen=True)
class EvaluateResult(Event):
    round: int
    eval_loss: float
    samples: int
    rounds: int = 0


@dataclass(frozen=True)
class CheckpointSaved(Event):
    round: int
    path: str


@dataclass(frozen=True)
class ConnectionState(Event):
    state: str  # connecting | connected | waiting | training | evaluating | reconnecting | refused | finishing
    detail: str = ""


@dataclass(frozen=True)
class Finished(Event):
    rounds_completed: int
    out_dir: str
    message: str = ""
    complete: bool = False  # True only when every planned round ran (a stopped run is not)
    rounds_planned: int = 0  # the run's rounds, when known


@dataclass(frozen=True)
class Failed(Event):
    message: str
