"""A run's named invites: the book's entries with the server's address, kept in
``<run>/invites/<name>.txt`` (readable by this user only) so each can be handed to its facility,
and taken up again when the run resumes (fl layer; no Qt)."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from ..core.files import private_dir, write_private
from .invite import Invite, InviteError, parse_invite
from .invites import InviteBook

log = logging.getLogger(__name__)


class RunInvites:
    """The named invites of one run: ``shared`` is the run's own invite (address, fingerprint)."""

    def __init__(self, book: InviteBook, shared: Invite, out: Path, on_revoke: Callable[[str], None]) -> None:
        self._book = book
        self._shared = shared
        self._folder = out / "invites"
        self._on_revoke = on_revoke
        self._named: dict[str, tuple[Invite, Path]] = {}  # named invites and where each is written
        self._lock = threading.Lock()

    def start(self, names: tuple[str, ...], resumed_from: Path | None) -> None:
        """The invites a run starts with: a resumed run's own (same codes, so its facilities get
        back in), then ``names``."""
        if resumed_from is not None:
            for saved in _saved_invites(Path(resumed_from) / "invites"):
                if not self._book.is_named(saved.name):
                    entry = self._book.add(saved.name, saved.join_code)
                    self._keep(
                        replace(saved, name=entry.name, address=self._shared.address, fingerprint=self._shared.fingerprint)
                    )
        for name in names:
            if not self._book.is_named(name):
                self.add(name)

    def add(self, name: str) -> Invite:
        """A new facility invited by name, with its own code; ValueError in words for an empty or
        taken name."""
        entry = self._book.add(name)
        return self._keep(Invite(self._shared.address, entry.code, self._shared.fingerprint, name=entry.name))

    def revoke(self, name: str) -> None:
        """Withdraw a named invite: its file goes, its live session ends (``on_revoke``), later
        attempts are refused. ValueError when there is none by that name."""
        entry = self._book.revoke(name)
        with self._lock:
            _, path = self._named.pop(entry.name)
        path.unlink(missing_ok=True)
        self._on_revoke(entry.name)

    def all(self) -> dict[str, Invite]:
        """The named invites in force, by facility name."""
        with self._lock:
            return {name: invite for name, (invite, _) in self._named.items()}

    def _keep(self, invite: Invite) -> Invite:
        folder = private_dir(self._folder)
        with self._lock:
            path = folder / f"{_file_safe(invite.name, {p.name for _, p in self._named.values()})}.txt"
            self._named[invite.name] = (invite, path)
        write_private(path, invite.to_text() + "\n")
        return invite


def _file_safe(name: str, taken: set[str]) -> str:
    """A file name (without .txt) for a facility's invite, unlike any in ``taken``."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "facility"
    candidate, n = stem, 1
    while f"{candidate}.txt" in taken:
        n += 1
        candidate = f"{stem}-{n}"
    return candidate


def _saved_invites(folder: Path) -> list[Invite]:
    """The named invites a run wrote (``<out>/invites/*.txt``); unreadable ones are skipped."""
    found = []
    for path in sorted(folder.glob("*.txt")) if folder.is_dir() else []:
        try:
            invite = parse_invite(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, InviteError):
            log.warning("skipped the unreadable invite file %s", path)
            continue
        if invite.name and invite.join_code:
            found.append(invite)
    return found
