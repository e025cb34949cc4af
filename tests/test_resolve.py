"""Where a facility joins (fl/resolve.py): an invite, @FILE holding one, or HOST[:PORT] with a
join code, resolved the same for the command line and the app; mistakes are UserErrors in words.
Plain parsing only: nothing connects."""

import pytest

from pumpfl_gui.core.errors import UserError
from pumpfl_gui.fl.addresses import ServerAddress
from pumpfl_gui.fl.resolve import (
    JoinCodeNeeded,
    Target,
    invite_in,
    read_invite_file,
    remembered_address,
    resolve_target,
    server_address,
)

FP_HEX = "AB" * 32
FP = ":".join(["AB"] * 32)
INVITE = f"pumpfl://10.0.0.1:9000/?code=k7qm2xpa9wd3&fp={FP_HEX}"
NAMED = f"pumpfl://plant.example.net:8443/?code=K7QM-2XPA-9WD3&fp={FP_HEX}&name=Plant+A"


def test_an_invite_gives_address_code_fingerprint_and_secure():
    t = resolve_target(INVITE)
    assert t == Target(ServerAddress("10.0.0.1", 9000), "K7QM-2XPA-9WD3", FP, insecure=False)
    assert "K7QM" not in repr(t)  # the code never reaches a log line


def test_an_invite_wins_over_the_insecure_switch_and_names_its_facility():
    t = resolve_target(f"invite: {NAMED}", insecure=True)
    assert (t.address.target, t.insecure, t.invited_name) == ("plant.example.net:8443", False, "Plant A")


def test_an_insecure_invite_needs_no_code():
    t = resolve_target("pumpfl://10.0.0.1:8080/")
    assert (t.insecure, t.join_code, t.fingerprint) == (True, "", None)


def test_host_and_port_with_a_join_code():
    t = resolve_target(" 192.168.1.20:8081 ", join_code="k7qm 2xpa 9wd3")
    assert t == Target(ServerAddress("192.168.1.20", 8081), "K7QM-2XPA-9WD3", None, insecure=False)


def test_a_host_alone_takes_the_default_port_and_an_insecure_server_needs_no_code():
    t = resolve_target("plant.local", insecure=True)
    assert (t.address, t.join_code, t.insecure) == (ServerAddress("plant.local", 8080), "", True)


def test_a_typed_join_code_replaces_the_invites():
    assert resolve_target(INVITE, join_code="AAAA-BBBB-CCCC").join_code == "AAAA-BBBB-CCCC"


def test_an_invite_file_is_read_and_stripped(tmp_path):
    path = tmp_path / "invite.txt"
    path.write_text(f"\n{NAMED}\n", encoding="utf-8")
    t = resolve_target(f"@{path}")
    assert (t.address.target, t.join_code, t.invited_name) == ("plant.example.net:8443", "K7QM-2XPA-9WD3", "Plant A")
    assert read_invite_file("10.0.0.1:8080") == "10.0.0.1:8080"  # anything else as it is


@pytest.mark.parametrize(
    "text,kwargs,fragment",
    [
        ("10.0.0.1:8080", {}, "needs a join code"),
        ("", {"join_code": "K7QM-2XPA-9WD3"}, "no server address given"),
        ("bad host:8080", {"insecure": True}, "contains a space"),
        ("10.0.0.1:99999", {"insecure": True}, "port"),
        ("@/no/such/invite.txt", {}, "cannot read the invite file /no/such/invite.txt"),
        ("pumpfl://10.0.0.1:8080/?code=K7QM-2XPA-9WD3&fp=12", {}, "fingerprint"),
        (f"pumpfl://10.0.0.1:8080/?fp={FP_HEX}", {}, "no join code"),
        ("pumpfl://10.0.0.1:8080/?code=K7QM-2XPA-9WD3", {}, "no certificate fingerprint"),
        (INVITE + " extra", {}, "contains a space"),
    ],
)
def test_bad_input_is_a_user_error_in_words(text, kwargs, fragment):
    with pytest.raises(UserError, match=fragment.replace("?", r"\?")):
        resolve_target(text, **kwargs)


def test_a_missing_join_code_has_its_own_class_so_front_ends_can_name_their_control():
    with pytest.raises(JoinCodeNeeded):
        resolve_target("10.0.0.1")
    assert issubclass(JoinCodeNeeded, UserError)


def test_an_unreadable_invite_file_is_a_user_error(tmp_path):
    binary = tmp_path / "invite.bin"
    binary.write_bytes(b"\xff\xfe\x00pumpfl")
    with pytest.raises(UserError, match="cannot read the invite file"):
        resolve_target(f"@{binary}")


def test_server_address_reads_an_invite_or_an_address_but_no_file():
    assert server_address(NAMED) == ServerAddress("plant.example.net", 8443)
    assert server_address("10.0.0.1") == ServerAddress("10.0.0.1", 8080)
    with pytest.raises(UserError):
        server_address("@invite.txt")


def test_invite_in_a_field_and_what_is_remembered_of_it():
    assert invite_in(NAMED).name == "Plant A"
    assert invite_in("10.0.0.1:8080") is None
    assert invite_in("pumpfl://10.0.0.1:8080/?code=K7QM") is None  # still being typed
    assert remembered_address(INVITE) == "10.0.0.1:9000"  # never the code
    assert remembered_address(" plant.example:9000 ") == "plant.example:9000"
    assert remembered_address("pumpfl://10.0.0.1:8080/?code=K7QM") == ""
