"""Where a facility joins, from what a person gave: an invite, ``@FILE`` holding one, or
``HOST[:PORT]`` with a join code (fl layer; no Qt).

The ``pumpfl client`` command and the app's Client page both resolve through here, so an
invite means the same on both: its address, code and certificate fingerprint win over the
"insecure" switch, and a plain address needs a join code unless the server is insecure.
Mistakes are `UserError` in words (``AddressError``, ``InviteError`` or `JoinCodeNeeded`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import UserError
from .addresses import ServerAddress, parse_server_address
from .invite import Invite, looks_like_invite, parse_invite
from .security import normalise_join_code

FILE_PREFIX = "@"  # @FILE: the invite is in this file (its join code stays out of the process list)


class JoinCodeNeeded(UserError):
    """A plain address for a server that is not insecure, and no join code beside it.

    Front ends may say it in their own words (which flag, which field), hence its own class."""


@dataclass(frozen=True)
class Target:
    """A server to join and how: ``fingerprint`` is the certificate an invite vouches for (None:
    trust on first use, or an insecure server); ``invited_name`` is the name a facility's own
    invite gives it (the coordinator shows it under that name)."""

    address: ServerAddress
    join_code: str = field(repr=False)  # a secret: never in a log line
    fingerprint: str | None
    insecure: bool
    invited_name: str | None = None


def read_invite_file(text: str) -> str:
    """``@FILE`` gives the text in FILE (e.g. the invite.txt a coordinator sent), stripped; any
    other text is returned as it is."""
    if not text.startswith(FILE_PREFIX):
        return text
    path = Path(text[len(FILE_PREFIX) :]).expanduser()
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the invite file {path}: {getattr(exc, 'strerror', None) or exc}") from None


def resolve_target(text: str, join_code: str = "", insecure: bool = False) -> Target:
    """The server in ``text``: an invite, ``@FILE`` holding one, or ``HOST[:PORT]`` (port 8080).

    ``join_code`` is one typed beside the text; with an invite it replaces the invite's code (a
    front end that ignores its code field for invites passes ""). ``insecure`` applies to a plain
    address only: an invite says itself whether its server is insecure. UserError in words."""
    server = read_invite_file(text.strip())
    if looks_like_invite(server):
        invite = parse_invite(server)
        address, code, fp, insecure, name = invite.address, invite.join_code, invite.fingerprint, invite.insecure, invite.name
    else:
        address, code, fp, name = parse_server_address(server), "", None, None
    if join_code.strip():
        code = normalise_join_code(join_code)
    if not insecure and not code:
        raise JoinCodeNeeded("this server needs a join code: paste the whole invite, or type the join code")
    return Target(address, code, fp, insecure, name)


def server_address(text: str) -> ServerAddress:
    """The server an invite names, or ``HOST[:PORT]`` as typed (port 8080); UserError otherwise.

    Reads no file: it suits a field checked as the person types (and ``pumpfl forget``)."""
    return parse_invite(text).address if looks_like_invite(text) else parse_server_address(text)


def invite_in(text: str) -> Invite | None:
    """The invite in ``text``; None for an address, or for an invite that does not parse (yet)."""
    if not looks_like_invite(text):
        return None
    try:
        return parse_invite(text)
    except UserError:
        return None


def remembered_address(text: str) -> str:
    """What an address field may keep between sessions: ``HOST:PORT``, never an invite's code."""
    text = text.strip()
    if not looks_like_invite(text):
        return text
    invite = invite_in(text)
    return invite.address.target if invite else ""
