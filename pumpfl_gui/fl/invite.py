"""Invites: the one pasteable line a server hands to each facility (fl layer; no Qt).

``pumpfl://HOST:PORT/?code=K7QM-2XPA-9WD3&fp=<64 hex>`` carries where to connect, the join code
and the fingerprint of the server's certificate; a facility's own invite adds ``&name=Plant+A``
(the name the coordinator knows it by). An insecure server's invite has neither ``fp`` nor
``code``; the client must say plainly that such a connection is not protected. A code without
a fingerprint is refused: it would send the code's proof to whoever answers, unencrypted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit

from pumpfl_gui.core.errors import UserError
from pumpfl_gui.fl.addresses import AddressError, ServerAddress, parse_server_address
from pumpfl_gui.fl.protocol import NAME_LIMIT, clean_name
from pumpfl_gui.fl.security import normalise_fingerprint, normalise_join_code

SCHEME = "pumpfl"
_PREFIX = "invite:"


class InviteError(AddressError):
    """An invite line that cannot be used as pasted."""


@dataclass(frozen=True)
class Invite:
    """A parsed invite. ``fingerprint`` is in ``AB:CD:...`` form, or None for an insecure server;
    ``name`` is the facility's, for an invite made for one facility."""

    address: ServerAddress
    join_code: str = field(repr=False)  # a secret: never in a log line
    fingerprint: str | None
    name: str | None = None

    @property
    def insecure(self) -> bool:
        return self.fingerprint is None

    def to_text(self) -> str:
        """The invite as one line; the fingerprint is written as 64 hex digits without colons."""
        params: dict[str, str] = {}
        if self.join_code:
            params["code"] = normalise_join_code(self.join_code)
        if self.fingerprint is not None:
            params["fp"] = normalise_fingerprint(self.fingerprint).replace(":", "")
        if self.name:
            params["name"] = self.name
        query = f"?{urlencode(params)}" if params else ""
        return f"{SCHEME}://{self.address.target}/{query}"


def _strip_prefix(text: str) -> str:
    line = (text or "").strip()
    if line.lower().startswith(_PREFIX):
        line = line[len(_PREFIX) :].strip()
    return line


def looks_like_invite(text: str) -> bool:
    """True when the text is meant as an invite (so an address field can treat it as one)."""
    return _strip_prefix(text).lower().startswith(f"{SCHEME}://")


def parse_invite(text: str) -> Invite:
    """Parse an invite line (optionally prefixed ``invite:``), or raise `InviteError`."""
    line = _strip_prefix(text)
    if not line:
        raise InviteError("the invite is empty; paste the whole line the server shows, starting with pumpfl://")
    if not line.lower().startswith(f"{SCHEME}://"):
        raise InviteError(
            "this is not a PumpFL invite (it must start with pumpfl://); paste the whole line the server shows, "
            "or type just the server's address in the address field"
        )
    if any(ch.isspace() for ch in line):
        raise InviteError("the invite contains a space; paste it again as one unbroken line")
    try:
        parts = urlsplit(line)
    except ValueError:  # e.g. unbalanced IPv6 brackets
        raise InviteError("the invite's server address has unbalanced brackets; copy the whole invite again") from None
    if parts.path not in ("", "/") or parts.fragment:
        raise InviteError("the invite has extra text after the address; paste the whole line exactly as the server shows it")
    try:
        address = parse_server_address(parts.netloc)
    except AddressError as exc:
        raise InviteError(f"the invite's server address is wrong: {exc}") from None

    params = parse_qs(parts.query, keep_blank_values=True)
    for name, values in params.items():
        if len(values) > 1:
            raise InviteError(f"the invite names '{name}' more than once; paste the line exactly as the server shows it")
    code_text = params.get("code", [None])[0]
    fp_text = params.get("fp", [None])[0]

    fingerprint = None
    if fp_text is not None:
        try:
            fingerprint = normalise_fingerprint(fp_text)
        except UserError:
            raise InviteError(
                "the invite's certificate fingerprint (fp=) is not 64 hexadecimal characters; copy the whole invite again"
            ) from None
    if fingerprint is not None and not code_text:
        raise InviteError("the invite has no join code (code=); copy the whole invite again")
    if fingerprint is None and code_text:
        raise InviteError(
            "the invite has a join code but no certificate fingerprint (fp=), so the connection could not be "
            "checked or encrypted; copy the whole invite again, or ask the coordinator for a new one"
        )
    join_code = ""
    if code_text:
        try:
            join_code = normalise_join_code(code_text)
        except UserError as exc:
            raise InviteError(f"the invite's join code is wrong: {exc}") from None
    return Invite(address, join_code, fingerprint, _invited_name(params.get("name", [None])[0]))


def _invited_name(text: str | None) -> str | None:
    if text is None:
        return None
    name = clean_name(text)
    if not name or len(text.strip()) > NAME_LIMIT:
        raise InviteError(
            f"the invite's facility name (name=) is empty or longer than {NAME_LIMIT} characters; copy the whole invite again"
        )
    return name
