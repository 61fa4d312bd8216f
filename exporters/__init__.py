"""gid exporters: numpy arrays + JSON metadata -> files Blender reads, and back.

A leaf package (numpy, OpenCV, Pillow, stdlib only; nothing from the engine or the add-on), so
the add-on and the CLI share one implementation. Every output is written all-or-nothing, and every
failure a user can cause is an :class:`ExportError` with a one-line message.
"""

from .atomic import OutputTransaction, atomic_write_bytes
from .colors import linear_to_srgb, srgb_to_linear
from .displacement import (
    displace_node_vectors,
    displacement_scale,
    encode_displacement_exr,
    write_displacement_sequence,
)
from .errors import ExportError, FileFormatError, OutputExistsError
from .frames import decode_frame, encode_exr, encode_frame, encode_png, frame_name
from .preview import write_gif, write_mp4
from .sequence import write_image_sequence
from .sidecar import encode_sidecar, read_sidecar, sidecar_document
from .spectral_file import load_spectral_file, save_spectral_file

__all__ = [
    "ExportError", "FileFormatError", "OutputExistsError", "OutputTransaction", "atomic_write_bytes",
    "decode_frame", "displace_node_vectors", "displacement_scale", "encode_displacement_exr",
    "encode_exr", "encode_frame", "encode_png", "encode_sidecar", "frame_name", "linear_to_srgb",
    "load_spectral_file", "read_sidecar", "save_spectral_file", "sidecar_document", "srgb_to_linear",
    "write_displacement_sequence", "write_gif", "write_image_sequence", "write_mp4",
]
