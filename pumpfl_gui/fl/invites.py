"""The coordinator's invite book: who may join, with which code (fl layer; no Qt).

It holds the shared trial code (anyone with it may join under the name they choose) and one
named invite per facility, each with its own code. A facility says which invite it holds by a
key id derived from the code (``security.invite_key_id``), never by the code itself. A named
invite binds the facility's name: whatever it calls itself, it is shown under the invite's name.
Revoking an invite keeps its key id, so a later attempt with it is told why it is refused.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .protocol import NAME_LIMIT, clean_name
from .security import invite_key_id, new_join_code, normalise_join_code

REVOKED = "the coordinator revoked this facility's invite; ask them for a new one"


@dataclass(frozen=True)
class Entry:
    """One code the coordinator hands out: ``name`` is None for the shared trial code."""

    code: str
    name: str | None = None


class InviteBook:
    def __init__(self, shared_code: str) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, Entry] = {}  # key id -> entry
        self._named: dict[str, str] = {}  # casefolded name -> key id
        self._revoked: set[str] = set()
        code = normalise_join_code(shared_code)
        self._entries[invite_key_id(code)] = Entry(code)

    def add(self, name: str, code: str | None = None) -> Entry:
        """A new named invite; ValueError in words for an empty, over-long or taken name."""
        if not isinstance(name, str) or not clean_name(name):
            raise ValueError("a facility's invite needs the facility's name, e.g. Plant A")
        if len(name.strip()) > NAME_LIMIT:
            raise ValueError(f"a facility's name may have at most {NAME_LIMIT} characters")
        cleaned = clean_name(name)
        with self._lock:
            if cleaned.casefold() in self._named:
                raise ValueError(f"there is already an invite for {cleaned}; revoke it first, or choose another name")
            code = normalise_join_code(code) if code else new_join_code()
            while invite_key_id(code) in self._entries or invite_key_id(code) in self._revoked:
                code = new_join_code()  # 60-bit codes: practically never taken
            key = invite_key_id(code)
            self._entries[key] = Entry(code, cleaned)
            self._named[cleaned.casefold()] = key
            return self._entries[key]

    def revoke(self, name: str) -> Entry:
        """Withdraw a named invite; ValueError when there is none by that name."""
        with self._lock:
            key = self._named.pop(clean_name(name).casefold(), None)
            if key is None:
                raise ValueError(f"there is no invite for {clean_name(name) or 'that name'}")
            self._revoked.add(key)
            return self._entries.pop(key)

    def find(self, key_id: str) -> Entry | None:
        """The invite with this key id, or None (unknown, or revoked: see `revoked`)."""
        with self._lock:
            return self._entries.get(key_id)

    def revoked(self, key_id: str) -> bool:
        with self._lock:
            return key_id in self._revoked

    def is_named(self, name: str) -> bool:
        """True when ``name`` belongs to a named invite (nobody else may use it)."""
        with self._lock:
            return clean_name(name).casefold() in self._named
