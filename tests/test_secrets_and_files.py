"""Secrets stay out of logs, settings and reprs; peers' names are inert in exported CSV;
a facility's label and time columns never leave it as sensors (issue 14, section 7)."""

import csv
import logging
import os
import stat
from pathlib import Path

import pandas as pd
import pytest

from pumpfl_gui.core.dataset import DataError, check_not_reserved, load_sensor_csv
from pumpfl_gui.core.redaction import HIDDEN, RedactSecrets, redact
from pumpfl_gui.fl.addresses import ServerAddress, find_free_port
from pumpfl_gui.fl.client_runner import ClientOptions, ClientRunner
from pumpfl_gui.fl.events import ServerListening
from pumpfl_gui.fl.protocol import FederationSettings
from pumpfl_gui.fl.security import new_join_code
from pumpfl_gui.fl.server_runner import ServerOptions, ServerRunner


def test_redaction_hides_join_codes_and_invite_codes_but_keeps_the_rest():
    code = new_join_code()
    line = f"invite pumpfl://10.0.0.5:8080/?code={code}&fp=ab12 and the code {code.lower()} typed, {code} shown"
    clean = redact(line)
    assert code not in clean and code.replace("-", "") not in clean
    assert "10.0.0.5:8080" in clean and "fp=ab12" in clean and HIDDEN in clean


def test_events_and_options_that_hold_a_code_leave_it_out_of_their_repr():
    code = new_join_code()
    event = ServerListening(address="0.0.0.0:8080", invite=f"pumpfl://h:1/?code={code}", out_dir="/tmp/run")
    options = ClientOptions(join_code=code)
    server_options = ServerOptions(join_code=code)
    for text in (repr(event), str(event), repr(options), repr(server_options)):
        assert code not in text


def test_the_app_log_file_is_private_and_never_holds_the_join_code(tmp_path, monkeypatch):
    """The GUI's log set-up, then a real server: its invite (with the code) is logged as
    an event."""
    from pumpfl_gui.gui.app import setup_logging

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    root = logging.getLogger()
    before = list(root.handlers)
    path = setup_logging()
    added = [h for h in root.handlers if h not in before]
    try:
        code = new_join_code()
        server = ServerRunner(
            FederationSettings(rounds=1, min_clients=1, join_timeout=1),
            ServerOptions(host="127.0.0.1", port=find_free_port(32000, "127.0.0.1"), out_dir=tmp_path / "run", join_code=code),
        )
        server.run()  # nobody joins: listens, logs its invite, gives up after the join wait
        logging.getLogger("pumpfl_gui.test").warning("a user pasted pumpfl://x:1/?code=%s", code)
        for handler in added:
            handler.flush()
        text = Path(path).read_text()
        assert "ServerListening" in text and "a user pasted" in text  # the lines are there ...
        assert code not in text and code.replace("-", "") not in text  # ... without the code
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    finally:
        for handler in added:
            root.removeHandler(handler)
            handler.close()


def test_a_log_filter_cleans_tracebacks_too():
    code = new_join_code()
    try:
        raise ValueError(f"bad invite pumpfl://h:1/?code={code}")
    except ValueError as exc:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "failed with %s", (exc,), exc_info=(type(exc), exc, exc.__traceback__)
        )
    RedactSecrets().filter(record)
    assert code not in record.getMessage() and code not in record.exc_text


def test_the_client_page_remembers_the_address_never_the_invite(qtbot, tmp_path):
    from pumpfl_gui.fl.resolve import remembered_address

    code = new_join_code()
    invite = f"pumpfl://192.168.1.100:8080/?code={code}&fp={'ab' * 32}"
    assert remembered_address(invite) == "192.168.1.100:8080"
    assert remembered_address(" plant.example:9000 ") == "plant.example:9000"


def test_exported_history_makes_a_peers_formula_name_inert(tmp_path):
    from pumpfl_gui.fl.events import RoundFinished
    from pumpfl_gui.gui.server_run_view import export_history_csv

    evil = '=HYPERLINK("http://evil.example","click")'
    history = [
        RoundFinished(
            round=1,
            rounds=1,
            train_loss=0.1,
            eval_loss=0.2,
            per_client={evil: {"samples": 10, "train_loss": 0.1}, "Plant A": {"samples": 5}},
        )
    ]
    path = tmp_path / "history.csv"
    export_history_csv(path, history)
    names = [row[1] for row in csv.reader(path.open())][1:]
    assert "'" + evil in names and "Plant A" in names and evil not in names


def _labelled_csv(path: Path) -> Path:
    n = 200
    pd.DataFrame(
        {
            "datetime": pd.date_range("2024-01-01", periods=n, freq="1s").astype(str),
            "pressure": [1.0 + 0.01 * (i % 7) for i in range(n)],
            "flow": [2.0 + 0.02 * (i % 5) for i in range(n)],
            "anomaly": [0] * 150 + [1] * 50,
        }
    ).to_csv(path, index=False)
    return path


def test_a_federation_cannot_read_a_facilitys_label_or_time_column_as_a_sensor(tmp_path):
    csv_path = _labelled_csv(tmp_path / "site.csv")
    data = load_sensor_csv(csv_path)
    assert data.label_column == "anomaly" and data.time_column == "datetime"
    with pytest.raises(DataError, match="'anomaly' is its label column"):
        check_not_reserved(data, ["pressure", "flow", "anomaly"])
    # The facility's own loader path, as the handshake uses it when the federation names
    # its columns.
    runner = ClientRunner(csv_path, ServerAddress("127.0.0.1", 1), ClientOptions(insecure=True))
    runner.data = runner._load()
    with pytest.raises(DataError, match="'datetime' is its time column"):
        runner._load(["datetime", "pressure", "flow"])
    assert runner._load(["flow", "pressure"])[0].sensors == ["flow", "pressure"]


def test_the_test_run_keeps_away_from_the_user_s_own_log_data_and_settings():
    """conftest points every user folder at the run's own: the app's log file, its data and its
    settings are the test run's, never the person's running the tests."""
    from pumpfl_gui.core.paths import user_data_dir
    from pumpfl_gui.gui.app import log_file
    from pumpfl_gui.gui.settings import AppSettings

    for path, variable in (
        (log_file(), "XDG_STATE_HOME"),
        (user_data_dir(), "XDG_DATA_HOME"),
        (Path(AppSettings().path), "XDG_CONFIG_HOME"),
    ):
        assert Path(path).is_relative_to(os.environ[variable]), (path, variable)
        assert not Path(path).is_relative_to(Path.home() / ".local"), path
