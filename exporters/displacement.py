"""Per-frame displacement maps as float EXR sequences, for compositing in Blender.

Two layouts:

* ``kind="pixels"``: R=dx, G=dy, B=0 in pixels, image convention (y down), *forward* fields:
  pixel p of the still moves to p + d. Exact data for scripts and other tools.
* ``kind="displace_node"``: ready for Blender's compositor Displace node, which samples its input
  at ``p - vector * scale`` in pixels with y pointing *up*. Given a *backward* field B (image
  convention, out(q) = I0(q - B(q))) the vector is ``(B_x / scale, -B_y / scale, 0)``. Rows are
  not flipped: EXR stores the top row first and Blender shows it the right way up; only the sign
  of y changes. One scale serves the whole sequence (the largest |component|), so vectors lie in
  [-1, 1] and the sidecar records it for the node's X and Y scale.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ExportError
from .frames import encode_exr
from .sequence import ProgressFn, write_frames

PIXELS_CONVENTION = "R=dx G=dy pixels, y down, forward: pixel p of the still moves to p+d"
DISPLACE_NODE_CONVENTION = (
    "R,G = Displace node vector (x right, y up); set the node's X and Y scale to 'scale'; "
    "backward: output pixel q samples the still at q - (R, G) * scale"
)
MIN_SCALE = 1e-6


def _as_field(field: np.ndarray) -> np.ndarray:
    """Validate a (2, H, W) finite float field and return it as float32."""
    f = np.asarray(field)
    if f.ndim != 3 or f.shape[0] != 2 or 0 in f.shape:
        raise ExportError(f"expected a displacement field of shape (2, H, W), got {f.shape}")
    if not np.issubdtype(f.dtype, np.floating):
        raise ExportError(f"expected a float displacement field, got {f.dtype}")
    if not np.isfinite(f).all():
        raise ExportError("displacement field contains NaN or infinite values")
    return f.astype(np.float32, copy=False)


def _pixels_image(field: np.ndarray) -> np.ndarray:
    f = _as_field(field)
    return np.stack([f[0], f[1], np.zeros_like(f[0])], axis=-1)


def encode_displacement_exr(field: np.ndarray) -> bytes:
    """(2, H, W) displacement in pixels -> float EXR with R=dx, G=dy, B=0."""
    return encode_exr(_pixels_image(field), "float", compression="rle")


def displace_node_vectors(field_backward: np.ndarray, scale: float) -> np.ndarray:
    """(2, H, W) backward field -> (H, W, 3) float32 Displace-node vectors (x/scale, -y/scale, 0)."""
    if not scale > 0:
        raise ExportError(f"displacement scale must be positive, got {scale!r}")
    f = _as_field(field_backward)
    return np.stack([f[0] / scale, -f[1] / scale, np.zeros_like(f[0])], axis=-1).astype(np.float32)


def displacement_scale(fields: Iterable[np.ndarray]) -> float:
    """One scale for a whole sequence: the largest |component| over all frames, at least 1e-6."""
    return max([MIN_SCALE] + [float(np.abs(_as_field(f)).max()) for f in fields])


def write_displacement_sequence(
    fields: Iterable[np.ndarray],
    count: int,
    out_dir: str | os.PathLike[str],
    prefix: str,
    overwrite: bool = False,
    scale: float | None = None,
    kind: str = "pixels",
    sidecar: dict[str, Any] | None = None,
    on_frame: ProgressFn | None = None,
) -> list[Path]:
    """Write ``prefix_0001.exr`` ... (float) plus ``prefix.json`` describing the convention.

    ``kind="pixels"`` expects forward fields; ``kind="displace_node"`` expects backward fields and a
    ``scale``. Without one, the scale is computed from ``fields`` when it is a list/tuple/array;
    a one-shot iterator cannot be read twice, so then pass ``scale=displacement_scale(...)``.
    """
    params: dict[str, Any] = dict(sidecar or {})
    if kind == "pixels":
        if scale is not None:
            raise ExportError("scale only applies to kind='displace_node'")
        to_image = _pixels_image
        params.update(displacement=kind, convention=PIXELS_CONVENTION)
    elif kind == "displace_node":
        if scale is None:
            if not isinstance(fields, (list, tuple, np.ndarray)):
                raise ExportError("displace_node export of a stream needs scale= (see displacement_scale)")
            scale = displacement_scale(fields)
        node_scale = float(scale)
        to_image = lambda f: displace_node_vectors(f, node_scale)  # noqa: E731
        params.update(displacement=kind, convention=DISPLACE_NODE_CONVENTION, scale=node_scale)
    else:
        raise ExportError(f"unknown displacement kind {kind!r}; use 'pixels' or 'displace_node'")
    return write_frames(
        fields, count=count, out_dir=out_dir, prefix=prefix, ext="exr",
        encode=lambda img: encode_exr(img, "float", compression="rle"), check=to_image,
        sidecar_kind="displacement", sidecar_params=params,
        sidecar_files={"format": "exr", "depth": "float", "colorspace": "data"},
        overwrite=overwrite, start=1, on_frame=on_frame,
    )
