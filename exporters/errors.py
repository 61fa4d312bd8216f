"""Errors raised by the exporters.

Kept in the leaf package so that `exporters` imports nothing from the engine. Callers at the
edge (CLI, add-on) catch ``(GidError, ExportError)`` and show the message as one line.
"""

from __future__ import annotations


class ExportError(Exception):
    """Writing or reading an output failed; the message is one line, fit for a user."""


class OutputExistsError(ExportError):
    """An output would replace a file that is already there and overwriting was not asked for."""


class OutputIsInputError(ExportError):
    """An output would replace a file the same command reads (its image, video or motion file)."""


class FileFormatError(ExportError):
    """A file gid reads back (spectral volume, sidecar) is corrupt, truncated or of another version."""
