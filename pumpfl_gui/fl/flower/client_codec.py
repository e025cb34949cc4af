"""A facility's end of Flower's message stream, in and out (fl/flower; the facility's only
contact with Flower's messages).

:func:`read` turns a message from the coordinator into one of ``fl/messages.py``'s classes;
the ``reply_*`` functions turn the facility's answer into the message Flower's stream carries.
"""

from __future__ import annotations

from flwr.common import (
    Code,
    EvaluateRes,
    FitRes,
    GetParametersRes,
    GetPropertiesRes,
    Status,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
    serde,
)
from flwr.proto.transport_pb2 import ClientMessage

from ..messages import Ask, Evaluate, Instruction, LetGo, SendParameters, Train, Unexpected

_OK = Status(code=Code.OK, message="ok")


def read(msg) -> Instruction:
    """The coordinator's message (a ``ServerMessage`` off the stream) in PumpFL's terms."""
    kind = msg.WhichOneof("msg")
    if kind == "get_properties_ins":
        return Ask(dict(serde.get_properties_ins_from_proto(msg.get_properties_ins).config))
    if kind == "fit_ins":
        ins = serde.fit_ins_from_proto(msg.fit_ins)
        arrays, unreadable = _arrays(ins.parameters)
        return Train(arrays, dict(ins.config), unreadable)
    if kind == "evaluate_ins":
        ins = serde.evaluate_ins_from_proto(msg.evaluate_ins)
        arrays, unreadable = _arrays(ins.parameters)
        return Evaluate(arrays, dict(ins.config), unreadable)
    if kind == "get_parameters_ins":
        return SendParameters()
    if kind == "reconnect_ins":
        return LetGo()
    return Unexpected(str(kind))


def _arrays(parameters) -> tuple[list | None, str]:
    """(the arrays, "") or (None, why they cannot be read)."""
    try:
        return parameters_to_ndarrays(parameters), ""
    except Exception as exc:  # bytes that are no arrays at all
        return None, type(exc).__name__


def reply_properties(props: dict) -> ClientMessage:
    return ClientMessage(get_properties_res=serde.get_properties_res_to_proto(GetPropertiesRes(_OK, props)))


def reply_trained(arrays: list, samples: int, metrics: dict) -> ClientMessage:
    res = FitRes(_OK, ndarrays_to_parameters(arrays), samples, metrics)
    return ClientMessage(fit_res=serde.fit_res_to_proto(res))


def reply_evaluated(loss: float, samples: int, metrics: dict) -> ClientMessage:
    return ClientMessage(evaluate_res=serde.evaluate_res_to_proto(EvaluateRes(_OK, loss, samples, metrics)))


def reply_parameters(arrays: list) -> ClientMessage:
    return ClientMessage(
        get_parameters_res=serde.get_parameters_res_to_proto(GetParametersRes(_OK, ndarrays_to_parameters(arrays)))
    )
