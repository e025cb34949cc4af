"""Checks before a server starts (fl/run_check.py) and the default facilities' files
(core/paths.py): refused in words before anything listens. Nothing is started here."""

import socket

import pytest

from pumpfl_gui.core.errors import UserError
from pumpfl_gui.core.paths import DEFAULT_FACILITIES, default_client_csv, default_client_csvs
from pumpfl_gui.fl.addresses import find_free_port
from pumpfl_gui.fl.protocol import NAME_LIMIT
from pumpfl_gui.fl.run_check import InsecureWithInvites, check_invite_names, check_server_run, make_settings


def test_sound_options_pass_and_return_the_invites_names():
    port = find_free_port(33000, "127.0.0.1")
    names = check_server_run(port, "127.0.0.1", advertise="vpn.example:9000", invites=[" Plant A ", "Plant B"])
    assert names == ("Plant A", "Plant B")


@pytest.mark.parametrize(
    "fields,fragment",
    [
        ({"rounds": 0}, "at least 1"),
        ({"min_clients": 0}, "at least 1"),
        ({"rounds": 20_000}, "number of rounds"),
        ({"strategy": "median", "min_clients": 2}, "at least 3 facilities"),
        ({"strategy": "fedadam", "dp_noise_multiplier": 1.0}, "FedAvg or FedProx"),
    ],
)
def test_settings_out_of_bounds_are_user_errors(fields, fragment):
    with pytest.raises(UserError, match=fragment):
        make_settings(**fields)


def test_a_taken_port_is_refused_with_the_way_out():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(UserError, match=f"port {port} is already in use"):
            check_server_run(port, "127.0.0.1")


def test_a_wrong_advertised_address_is_refused_before_the_port_is_tried():
    with pytest.raises(UserError, match="port"):
        check_server_run(find_free_port(25100, "127.0.0.1"), "127.0.0.1", advertise="2.tcp.example.io:0")


@pytest.mark.parametrize(
    "names,fragment",
    [
        (["Plant A", " "], "needs the facility's name"),
        (["Plant A", "plant a"], "'plant a' is invited twice"),
        (["x" * (NAME_LIMIT + 1)], f"longer than {NAME_LIMIT} characters"),
    ],
)
def test_invite_names_must_be_sound(names, fragment):
    with pytest.raises(UserError, match=fragment):
        check_invite_names(names)


def test_invites_on_an_insecure_server_are_refused_in_their_own_class():
    with pytest.raises(InsecureWithInvites, match="insecure server"):
        check_server_run(find_free_port(33200, "127.0.0.1"), "127.0.0.1", invites=["Plant A"], insecure=True)
    check_server_run(find_free_port(33200, "127.0.0.1"), "127.0.0.1", insecure=True)  # without invites: fine


def test_the_default_facilities_files(tmp_path, monkeypatch):
    monkeypatch.setenv("PUMPFL_DATA_DIR", str(tmp_path))
    assert default_client_csv(3) == tmp_path / "client_3.csv"
    assert default_client_csvs() == [tmp_path / f"client_{i}.csv" for i in range(DEFAULT_FACILITIES)]
    elsewhere = tmp_path / "elsewhere"
    assert default_client_csvs(2, elsewhere) == [elsewhere / "client_0.csv", elsewhere / "client_1.csv"]
    with pytest.raises(UserError, match="client number 5 does not exist; the default data has clients 0 to 4"):
        default_client_csv(5)
