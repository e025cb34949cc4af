"""Checks before a server starts: could it run with these options? (fl layer; no Qt, no Flower).

``pumpfl server`` and the app's Server page both ask here before they start a runner, so a
mistake is refused in words before anything listens (STYLE 5: validate before the thread).
Each check raises `UserError`; front ends that name their own controls may reword
`InsecureWithInvites` (which flag or tick box to change).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..core.errors import UserError
from .addresses import check_port_free, parse_server_address
from .protocol import NAME_LIMIT, FederationSettings, clean_name


class InsecureWithInvites(UserError):
    """Invites per facility asked of an insecure server, which has no join codes to give them."""


def make_settings(**fields) -> FederationSettings:
    """`FederationSettings` from these fields, or UserError saying which bound or choice fails."""
    try:
        return FederationSettings(**fields)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def check_invite_names(names: Iterable[str]) -> tuple[str, ...]:
    """The facilities to invite by name, stripped, in order; UserError for an empty, over-long or
    repeated name."""
    seen: set[str] = set()
    checked = []
    for name in (n.strip() for n in names):
        if not clean_name(name):
            raise UserError("a facility's invite needs the facility's name, e.g. Plant A")
        if len(name) > NAME_LIMIT:
            raise UserError(f"the facility name '{name[:20]}…' is longer than {NAME_LIMIT} characters; shorten it")
        key = clean_name(name).casefold()  # as the server will know it
        if key in seen:
            raise UserError(f"'{name}' is invited twice; each facility gets one invite")
        seen.add(key)
        checked.append(name)
    return tuple(checked)


def check_server_run(
    port: int, host: str = "0.0.0.0", advertise: str | None = None, invites: Sequence[str] = (), insecure: bool = False
) -> tuple[str, ...]:
    """Raise UserError unless a server could start: the advertised address reads, the invites'
    names are sound and fit the security, and the port is free. Returns the invites' names, checked.

    The settings themselves are checked as they are made (`make_settings`)."""
    if advertise:
        parse_server_address(advertise, default_port=port)  # a typo is caught before the server starts
    names = check_invite_names(invites)
    if names and insecure:
        raise InsecureWithInvites(
            "invites per facility carry their own join codes, which an insecure server does not use; "
            "make the server secure, or leave out the invites"
        )
    check_port_free(port, host)
    return names
