"""Flower is met in one package, and we know exactly which of its names we lean on.

A Flower upgrade that moves or removes one of those names fails
``test_every_flower_name_we_use_still_exists`` with the name, so the upgrade says what broke."""

import ast
import importlib
from pathlib import Path

import numpy as np
import pytest
from flwr.common import FitIns, GetPropertiesIns, ndarrays_to_parameters, serde
from flwr.proto.transport_pb2 import ServerMessage

from pumpfl_gui.fl.flower import client_codec
from pumpfl_gui.fl.messages import Ask, Evaluate, LetGo, SendParameters, Train

PACKAGE = Path(__file__).resolve().parents[1] / "pumpfl_gui"
SEAM = PACKAGE / "fl" / "flower"


def flower_imports(path: Path) -> list[tuple[str, str | None]]:
    """(module, name) for each ``from flwr... import name`` and (module, None) for
    ``import flwr...``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "flwr":
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names if alias.name.split(".")[0] == "flwr"]
    return found


def test_only_the_seam_imports_flower():
    outside = {str(p.relative_to(PACKAGE)): flower_imports(p) for p in PACKAGE.rglob("*.py") if SEAM not in p.parents}
    assert {path: names for path, names in outside.items() if names} == {}


def test_every_flower_name_we_use_still_exists():
    used = sorted({pair for p in SEAM.glob("*.py") for pair in flower_imports(p)}, key=str)
    assert len(used) >= 20, used  # the seam's files were read: it uses Flower's transport, strategies, messages
    missing = []
    for module, name in used:
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            missing.append(f"{module} ({exc})")
            continue
        if name is not None and not hasattr(mod, name):
            missing.append(f"{module}.{name}")
    assert missing == [], f"Flower no longer offers: {missing}"


def test_the_codec_reads_flowers_messages_into_ours():
    arrays = [np.arange(6, dtype=np.float32).reshape(2, 3)]
    fit = ServerMessage(fit_ins=serde.fit_ins_to_proto(FitIns(ndarrays_to_parameters(arrays), {"round": 2})))
    got = client_codec.read(fit)
    assert isinstance(got, Train) and got.config == {"round": 2} and got.unreadable == ""
    np.testing.assert_array_equal(got.arrays[0], arrays[0])

    ask = ServerMessage(get_properties_ins=serde.get_properties_ins_to_proto(GetPropertiesIns({"k": "v"})))
    assert client_codec.read(ask) == Ask({"k": "v"})
    assert client_codec.read(ServerMessage(reconnect_ins=ServerMessage.ReconnectIns())) == LetGo()
    assert client_codec.read(ServerMessage(get_parameters_ins=ServerMessage.GetParametersIns())) == SendParameters()


@pytest.mark.parametrize("junk", [b"\x00not an array", b"\x93NUMPY\x01\x00\xff\xff{'descr'"])
def test_parameters_that_are_no_arrays_arrive_as_unreadable_not_as_a_crash(junk):
    from flwr.common import EvaluateIns, Parameters

    msg = ServerMessage(evaluate_ins=serde.evaluate_ins_to_proto(EvaluateIns(Parameters([junk], "numpy.ndarray"), {})))
    got = client_codec.read(msg)
    assert isinstance(got, Evaluate) and got.arrays is None and got.unreadable


def test_a_port_taken_after_it_was_checked_free_fails_as_an_os_error(tmp_path):
    """Two runs that found the same port free race to bind it; the loser gets an OSError, which
    the loopback engine answers with the next free port (grpc raises RuntimeError there)."""
    import socket

    from pumpfl_gui.fl.flower.wire import WireCounter, start_flower_server

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"could not listen on 127.0.0.1:{port}: the port is in use"):
            start_flower_server(None, f"127.0.0.1:{port}", WireCounter(), None)
