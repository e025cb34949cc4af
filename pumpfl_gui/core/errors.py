"""Errors a user can cause and fix (core layer; stdlib only).

Each carries one plain sentence for a person; the CLI prints it as ``error: ...`` and exits 2,
the GUI shows it in a dialog. Anything else that escapes is a bug, not the user's fault.
"""


class UserError(Exception):
    """A problem with the user's input, explained in one human sentence."""


class DataError(UserError):
    """A data file that cannot be used as it is (missing, malformed, too short, ...)."""


class ModelError(UserError):
    """A model folder that is missing, incomplete or does not fit the data."""
