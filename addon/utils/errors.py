"""The add-on's user errors: each says, in one line, what to do (the operators report it)."""

from __future__ import annotations

from ...gid_engine.errors import GidError


class SourceImageError(GidError):
    """The selected image cannot be handed to the engine (the message says what to do)."""


class NoImageError(SourceImageError):
    pass


class PackedImageError(SourceImageError):
    pass


class GeneratedImageError(SourceImageError):
    pass


class MissingImageFileError(SourceImageError):
    pass


class EmptyImageError(SourceImageError):
    pass


class HugeImageError(SourceImageError):
    pass


class LinkedImageError(SourceImageError):
    """The image is linked from a library .blend; results stored on it would not be saved."""


class OutputFolderError(GidError):
    """The output folder cannot be used (unsaved .blend with a relative path, not writable...)."""


class OutputConflictError(OutputFolderError):
    """Files with our names are there but are not a previous gid bake: never replaced."""


class MotionMissingError(GidError):
    """No spectral volume yet, or its file is gone."""
