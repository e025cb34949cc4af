"""What a facility reads from the coordinator's words is checked before use (fl/protocol.py)."""

import json

import pytest

from pumpfl_gui.fl import protocol as P

NO_REASON = "the server ended the run without a clear reason"


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[1, 2]",
        json.dumps({"outcome": "exploded"}),
        '{"outcome": "stopped", "round": Infinity}',
        '{"outcome": "stopped", "rounds": "many"}',
        "[" * 100_000,  # nested past the parser's recursion limit
    ],
)
def test_a_malformed_end_reason_counts_as_none_and_the_facility_keeps_waiting(text):
    end = P.read_end_reason(text)
    assert end == {"outcome": "failed", "resumable": True, "rounds": 0, "message": NO_REASON}


def test_an_end_reason_is_cleaned_before_it_is_shown():
    said = {"outcome": "stopped", "round": -3, "rounds": 10, "completed": 4, "message": "bye\x1b[31m" + "x" * 900}
    end = P.read_end_reason(json.dumps(said))
    assert end["round"] == 0 and end["rounds"] == 10 and end["completed"] == 4
    assert "\x1b" not in end["message"] and len(end["message"]) == 500


@pytest.mark.parametrize(
    "config",
    [
        {P.HELLO_SENSORS: "not json"},
        {P.HELLO_SENSORS: json.dumps([1, 2])},
        {P.HELLO_SENSORS: json.dumps("a")},
        {P.HELLO_SPEC: json.dumps([60])},
        {P.HELLO_SPEC: "[" * 100_000},
    ],
)
def test_a_federation_description_that_is_not_sensors_and_a_spec_is_refused(config):
    with pytest.raises(ValueError):
        P.read_federation(config)


def test_a_federation_description_is_read():
    config = {P.HELLO_SENSORS: json.dumps(["a", "b"]), P.HELLO_SPEC: json.dumps({"window": 60})}
    assert P.read_federation(config) == (["a", "b"], {"window": 60})
    assert P.read_federation({}) == (None, {})
