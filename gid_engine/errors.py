"""Errors the engine raises on purpose.

Every failure a user can cause (bad file, wrong shape, missing weights, full disk, cancel)
is a ``GidError`` with a one-line message: the CLI prints it without a traceback and the
Blender add-on shows it as a report. Anything else escaping is a bug.
"""

from __future__ import annotations


class GidError(Exception):
    """A user-facing failure whose message is safe to show as one line."""


class InputError(GidError):
    """An input file or argument is missing, unreadable or of the wrong kind."""


class FormatError(GidError):
    """A file exists but its content is not what gid expects (corrupt, wrong version, wrong shape)."""


class MissingWeightsError(GidError):
    """A model's files are not installed (the product works without it: extraction instead of prediction)."""


class Cancelled(GidError):
    """The user cancelled long work; whatever it was writing has been removed."""

    def __init__(self, message: str = "cancelled; nothing was written") -> None:
        super().__init__(message)


class ArgumentError(InputError, ValueError):
    """A public function was called with a value it does not accept; the message names the argument.

    It is a ValueError too, so Python callers can catch it the way they catch the standard library's.
    """


class ArgumentTypeError(ArgumentError, TypeError):
    """A public function was called with an argument of the wrong type (a TypeError too)."""
