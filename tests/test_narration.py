"""The runners' events in words (fl/narration.py): each event type gives its one sentence, and
the events not worth a line give None. Plain objects only: no federation, no Qt."""

import pytest

from pumpfl_gui.fl import narration
from pumpfl_gui.fl.events import (
    CheckpointSaved,
    ClientJoined,
    ClientLeft,
    ClientRefused,
    ConnectionState,
    EpochLoss,
    EvaluateResult,
    FacilityDropped,
    Failed,
    Finished,
    FitResult,
    RoundFinished,
    RoundStarted,
    ServerListening,
    Waiting,
)

INVITE = "pumpfl://10.0.0.1:8080/?code=K7QM-2XPA-9WD3&fp=" + "AB" * 32


@pytest.mark.parametrize(
    "event,words",
    [
        (ServerListening("0.0.0.0:8080", INVITE, "/runs/r1"), "listening on 0.0.0.0:8080; results in /runs/r1"),
        (ClientJoined("c1", "Plant A", "ipv4:10.0.0.2:5000", 12345), "Plant A joined (12,345 training windows)"),
        (ClientRefused("ipv4:10.0.0.9:5000", "intruder", "wrong join code"), "refused intruder: wrong join code"),
        (ClientLeft("c1", "Plant A"), "Plant A left"),
        (FacilityDropped(3, "Plant B", "too late"), "round 3: Plant B is out of this round: too late"),
        (Waiting(2, 1, 3540.0, "up to 59 min for 1 more"), "1 of 2 facilities connected; up to 59 min for 1 more"),
        (RoundStarted(2, 10, ["Plant A", "Plant B"]), "round 2/10 with Plant A, Plant B"),
        (FitResult(4, "Plant A", 8000, 0.123456, 2.34), "round 4 trained on a sample of 8,000 windows, loss 0.1235 (2.3 s)"),
        (EvaluateResult(4, 0.05, 2000), "round 4: eval loss 0.0500 on 2,000 held-out windows"),
        (ConnectionState("reconnecting", "the server went away; again in 5 s"), "the server went away; again in 5 s"),
        (ConnectionState("trusted", "trusting the server's certificate"), "trusting the server's certificate"),
        (Finished(10, "/runs/r1", "all rounds completed", complete=True), "finished: all rounds completed"),
        (Finished(3, "/runs/r1", "stopped", complete=False, rounds_planned=10), "ended early: stopped"),
        (Failed("the port is taken"), "failed: the port is taken"),
    ],
)
def test_each_event_gives_its_sentence(event, words):
    assert narration.sentence(event) == words


def test_round_finished_states_losses_traffic_and_privacy_when_there_is_any():
    plain = RoundFinished(2, 5, 0.12345, None, bytes_sent=1_500_000, bytes_received=3_000_000, seconds=4.25)
    assert narration.sentence(plain) == (
        "round 2/5 done in 4.2 s  train loss 0.1235  eval loss -  sent 1.50 MB  received 3.00 MB"
    )
    private = RoundFinished(5, 5, 0.1, 0.2, epsilon=3.456, agreed_threshold=0.0123456)
    assert narration.sentence(private).endswith("  epsilon 3.46  agreed threshold 0.01235")
    assert narration.round_summary(RoundFinished(2, 5, 0.1, 0.25, bytes_sent=1234, bytes_received=56789, epsilon=1.5)) == (
        "round  2: eval loss 0.2500  bytes sent 1,234  received 56,789  epsilon 1.50"
    )


@pytest.mark.parametrize(
    "event",
    [
        EpochLoss(1, 2, 3, 0.5),
        CheckpointSaved(1, "/runs/r1/round_1"),
        ConnectionState("connecting", "to 10.0.0.1:8080"),
        ConnectionState("training", "round 1"),
        ConnectionState("evaluating", "round 1"),
        ConnectionState("refused", "wrong join code"),
    ],
)
def test_progress_ticks_and_status_only_states_give_no_log_line(event):
    assert narration.sentence(event) is None


def test_a_server_listening_sentence_never_carries_the_invite_and_its_code():
    words = narration.sentence(ServerListening("0.0.0.0:8080", INVITE, "/runs/r1"))
    assert "K7QM" not in words and "pumpfl://" not in words


def test_status_lines_and_endings():
    assert narration.epoch_progress(EpochLoss(2, 1, 3, 0.04321)) == "round 2, epoch 1/3, loss 0.0432"
    assert narration.connection_status(ConnectionState("connecting")) == "Connecting…"
    assert narration.connection_status(ConnectionState("training", "round 2 of 5")) == "Training (round 2 of 5)…"
    assert narration.connection_status(ConnectionState("agreed", "agreed the scaler")) == "agreed the scaler"
    assert narration.ending(Finished(5, "/o", "all rounds completed", complete=True)) == "The run completed (5 rounds)."
    assert narration.ending(Finished(2, "/o", "stopped", rounds_planned=5)) == (
        "You stopped taking part: the model has 2 of 5 rounds (an incomplete run)."
    )
    assert narration.ending(Finished(2, "/o", "the coordinator stopped the run")) == (
        "The coordinator stopped the run: the model has 2 rounds (an incomplete run)."
    )


def test_every_event_type_is_narrated_or_deliberately_silent():
    """A new event type must be given words here (or be added to the silent ones on purpose)."""
    import dataclasses

    from pumpfl_gui.fl import events

    silent = {"EpochLoss", "CheckpointSaved"}  # progress ticks: a progress line, or nothing
    for name in dir(events):
        cls = getattr(events, name)
        if not (isinstance(cls, type) and issubclass(cls, events.Event) and cls is not events.Event):
            continue
        fields = {f.name: _sample(f.type) for f in dataclasses.fields(cls)}
        if name == "ConnectionState":
            fields["state"] = "connected"
        said = narration.sentence(cls(**fields))
        assert (said is None) == (name in silent), name


def _sample(annotation: str):
    if "list" in annotation:
        return ["a"]
    if "dict" in annotation:
        return {}
    if annotation.startswith("int"):
        return 1
    if annotation.startswith("float"):
        return 1.0
    if annotation.startswith("bool"):
        return True
    return "x"
