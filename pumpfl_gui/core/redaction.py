"""Keeping secrets out of logs (core layer; stdlib only).

A join code is a bearer secret: whoever reads it can join the federation. Log lines are meant to
be sent to whoever helps (the README asks for them), so every handler PumpFL installs passes
through :class:`RedactSecrets`, which replaces anything shaped like a join code, and the
``code=`` part of an invite line, with a placeholder. Events and options that hold a code also
leave it out of their ``repr``; this filter is the second line.
"""

from __future__ import annotations

import logging
import re

HIDDEN = "[join code hidden]"
# XXXX-XXXX-XXXX in Crockford base32 (fl/security.py), and an invite's code= parameter.
_CODE = re.compile(
    r"\b[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}\b",
)
_INVITE_CODE = re.compile(r"(code=)[^&\s'\"]+", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with every join code and invite code replaced by a placeholder."""
    return _CODE.sub(HIDDEN, _INVITE_CODE.sub(lambda m: m.group(1) + HIDDEN.replace(" ", "-"), text))


class RedactSecrets(logging.Filter):
    """A handler filter: formats the record's message once, without secrets."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def install(handler: logging.Handler) -> logging.Handler:
    handler.addFilter(RedactSecrets())
    return handler
