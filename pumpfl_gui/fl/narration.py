"""The runners' events in words: one sentence per event, for every front end (fl layer; no Qt,
no Flower).

The CLI prints ``who: <sentence>``; the app's logs and status lines show the same words. Each
function matches on the event's class (``fl/events.py``), so a renamed event fails at import,
not silently here. ``None`` means the event is not worth a line of its own (a progress tick,
a checkpoint written).
"""

from __future__ import annotations

from .events import (
    ClientJoined,
    ClientLeft,
    ClientRefused,
    ConnectionState,
    EpochLoss,
    EvaluateResult,
    Event,
    FacilityDropped,
    Failed,
    Finished,
    FitResult,
    RoundFinished,
    RoundStarted,
    ServerListening,
    Waiting,
)

# A facility's connection states worth a log line; the others (connecting, training,
# evaluating, refused) show in its status line only, or end the run with their own event.
LOGGED_STATES = frozenset({"connected", "reconnecting", "waiting", "trusted", "agreed", "finishing"})


def capitalised(text: str) -> str:
    """A line as a sentence starts: its first letter upper-case, the rest as it is."""
    return text[:1].upper() + text[1:]


def _loss(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def sentence(event: Event) -> str | None:
    """The event as one log line (no speaker, lower-case start), or None if not worth one."""
    match event:
        case ServerListening(address=address, out_dir=out_dir):
            return f"listening on {address}; results in {out_dir}"
        case ClientJoined(name=name, samples=samples):
            return f"{name} joined ({samples:,} training windows)"
        case ClientRefused(name=name, reason=reason):
            return f"refused {name}: {reason}"
        case ClientLeft(name=name):
            return f"{name} left"
        case FacilityDropped(round=rnd, name=name, reason=reason):
            return f"round {rnd}: {name} is out of this round: {reason}"
        case Waiting():
            return waiting(event)
        case RoundStarted(round=rnd, rounds=rounds, participants=participants):
            return f"round {rnd}/{rounds} with {', '.join(participants)}"
        case RoundFinished():
            return round_finished(event)
        case ConnectionState(state=state, detail=detail) if state in LOGGED_STATES:
            return detail
        case FitResult(round=rnd, samples=samples, train_loss=loss, seconds=seconds):
            return f"round {rnd} trained on a sample of {samples:,} windows, loss {loss:.4f} ({seconds:.1f} s)"
        case EvaluateResult(round=rnd, eval_loss=loss, samples=samples):
            return f"round {rnd}: eval loss {loss:.4f} on {samples:,} held-out windows"
        case Finished(complete=complete, message=message):
            return f"{'finished' if complete else 'ended early'}: {message}"
        case Failed(message=message):
            return f"failed: {message}"
    return None


def waiting(e: Waiting) -> str:
    """How many facilities are here, and for whom and how long the run waits."""
    return f"{e.connected} of {e.needed} facilities connected; {e.detail}"


def round_finished(e: RoundFinished) -> str:
    """A round's figures: time, losses, traffic; epsilon and the agreed threshold when there are."""
    privacy = f"  epsilon {e.epsilon:.2f}" if e.epsilon is not None else ""
    agreed = f"  agreed threshold {e.agreed_threshold:.5f}" if e.agreed_threshold is not None else ""
    return (
        f"round {e.round}/{e.rounds} done in {e.seconds:.1f} s  train loss {_loss(e.train_loss)}  "
        f"eval loss {_loss(e.eval_loss)}  sent {e.bytes_sent / 1e6:.2f} MB  received {e.bytes_received / 1e6:.2f} MB"
        f"{privacy}{agreed}"
    )


def round_summary(e: RoundFinished) -> str:
    """A round as one row of a run's summary table (``pumpfl demo``'s closing lines)."""
    privacy = f"  epsilon {e.epsilon:.2f}" if e.epsilon is not None else ""
    return (
        f"round {e.round:2d}: eval loss {_loss(e.eval_loss)}  bytes sent {e.bytes_sent:,}  received {e.bytes_received:,}{privacy}"
    )


def epoch_progress(e: EpochLoss) -> str:
    """A facility's training progress inside a round (a progress line, rewritten in place)."""
    return f"round {e.round}, epoch {e.epoch}/{e.epochs}, loss {e.loss:.4f}"


def connection_status(e: ConnectionState) -> str:
    """A facility's connection as its status line says it (a sentence, capitalised)."""
    match e.state:
        case "connecting":
            return "Connecting…"
        case "connected":
            return "Connected; waiting for the round to start."
        case "training":
            return f"Training ({e.detail})…"
        case "evaluating":
            return f"Evaluating the global model ({e.detail})…"
        case "reconnecting":
            return f"Reconnecting: {e.detail}"
        case "finishing":
            return f"The rounds are over: {e.detail}…"
    return e.detail


def ending(result: Finished) -> str:
    """How a facility's run ended, as the server said (a run cut short says so), capitalised."""
    if result.complete:
        return f"The run completed ({result.rounds_completed} rounds)."
    said = "You stopped taking part" if result.message == "stopped" else capitalised(result.message)
    planned = f" of {result.rounds_planned}" if result.rounds_planned else ""
    return f"{said}: the model has {result.rounds_completed}{planned} rounds (an incomplete run)."
