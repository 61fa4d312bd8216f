"""Interactive dynamics as pictures: a ``ModalSimulator``'s displacement fields rendered onto a still.

The simulator (``modal.py``) answers "where is every pixel at frame N, given these pokes"; this
module turns that answer into frames, the same way ``render.py`` does for the looping motion:

* **full** resolution: the still is softmax-splatted forward by the field (paper §5), with the
  splatting weight ``z`` = the reference motion's RMS amplitude per pixel (``motion_weight``),
  so pixels that move a lot (foreground) win where several land on one target;
* **proxy**: the *field itself* is splatted at a small size (forward -> backward field, keeping
  the z-ordering), upsampled, and the full-size still is backward-warped with it. The motion is
  smooth at the model's resolution, so this gives the same picture at a cost that does not grow
  with the output (a 960x540 preview from a 256x144 basis: a 256x144 splat plus one remap).

``"auto"`` splats in full while the output is at most ``PROXY_FACTOR`` times the basis per side
(as the loop renderer does); an interactive preview passes ``proxy_factor=1`` to splat only at
the basis size. A frame whose field is exactly zero (before the first poke, a zero mask) is the
still itself, bit for bit, without calling the splatter.

Frames here are *simulation* frames (``ModalSimulator.fps`` per second, rest at frame 0); the
add-on uses the scene's frame numbers directly. ``bake_to_dir`` writes a PNG sequence and/or
displacement maps as one all-or-nothing set through the exporters.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

import numpy as np

from ...exporters.atomic import AllOrNothing
from ...exporters.displacement import write_displacement_sequence
from ...exporters.sequence import write_image_sequence
from .. import __version__
from ..errors import InputError
from ..media.imaging import LoadedImage, resize_channels
from .modal import ModalBasis, ModalSimulator, Poke
from ..progress import Job, ensure_job
from ..rendering.render import ASPECT_TOLERANCE, PROXY_FACTOR, SPLAT_RESOLUTIONS, Splatter

DEFAULT_PREVIEW_SIDE = 960
FRAME_PREFIX = "frame"
DISPLACEMENT_PREFIX = "disp"


# --------------------------------------------------------------------------------------- sizes
def preview_size(width: int, height: int, max_side: int = DEFAULT_PREVIEW_SIDE) -> tuple[int, int]:
    """``width x height`` scaled down (never up) so the long side is at most ``max_side``."""
    width, height, max_side = int(width), int(height), int(max_side)
    if width < 1 or height < 1:
        raise InputError(f"image size must be positive, got {width}x{height}")
    if max_side < 1:
        raise InputError(f"preview size must be >= 1, got {max_side}")
    long_side = max(width, height)
    if long_side <= max_side:
        return width, height
    scale = max_side / long_side
    return max(1, round(width * scale)), max(1, round(height * scale))


def field_size(basis: ModalBasis, width: int, height: int, splat_resolution: str = "auto",
               proxy_factor: float = PROXY_FACTOR) -> Optional[tuple[int, int]]:
    """The proxy size to splat the field at, or ``None`` to splat the image at ``width x height``."""
    if splat_resolution not in SPLAT_RESOLUTIONS:
        raise InputError(f"splat resolution must be one of {', '.join(SPLAT_RESOLUTIONS)}, got {splat_resolution!r}")
    if not (math.isfinite(proxy_factor) and proxy_factor > 0):
        raise InputError(f"proxy factor must be > 0, got {proxy_factor}")
    pw = min(int(width), max(1, round(proxy_factor * basis.width)))
    ph = min(int(height), max(1, round(proxy_factor * basis.height)))
    if splat_resolution == "full" or (splat_resolution == "auto" and (pw, ph) == (width, height)):
        return None
    return pw, ph


def check_basis_fit(basis: ModalBasis, width: int, height: int, fit: str = "check") -> None:
    """Refuse motion made for a differently shaped image (``fit="stretch"`` allows it)."""
    if fit == "stretch":
        return
    if fit != "check":
        raise InputError(f"fit must be 'check' or 'stretch', got {fit!r}")
    a_basis, a_img = basis.width / basis.height, width / height
    if abs(a_basis / a_img - 1.0) > ASPECT_TOLERANCE:
        raise InputError(
            f"motion is {basis.width}x{basis.height} (aspect {a_basis:.3f}) but the image is {width}x{height} "
            f"(aspect {a_img:.3f}); use motion made for this image"
        )


# --------------------------------------------------------------------------------------- weights
def motion_weight(basis: ModalBasis) -> np.ndarray:
    """``(H, W)`` float32 splatting weight at the basis size: how much each pixel moves.

    The RMS amplitude, in pixels of the volume, of the reference motion restricted to the
    basis' bins (``sqrt(2 sum_j |S_j(p)|^2)``, Parseval: the RMS of ``2 Re(S e^{i w t})``),
    times the mask. Static, so which pixel wins an overlap does not flicker from frame to frame.
    """
    power = np.zeros((basis.height, basis.width), dtype=np.float64)
    for j in range(basis.num_modes):
        u = basis.modes[j]
        power += (basis.norms[j] ** 2) * (np.abs(u[0]).astype(np.float64) ** 2 + np.abs(u[1]).astype(np.float64) ** 2)
    z = np.sqrt(2.0 * power)
    if basis.mask is not None:
        z *= basis.mask
    return z.astype(np.float32)


def _resized_plane(plane: np.ndarray, width: int, height: int) -> np.ndarray:
    if plane.shape == (height, width):
        return np.ascontiguousarray(plane, dtype=np.float32)
    return resize_channels(plane[None].astype(np.float32), width, height)[0]


# --------------------------------------------------------------------------------------- drawing
def render_with_field(pixels: np.ndarray, field: np.ndarray, z: np.ndarray, splatter: Splatter) -> np.ndarray:
    """``(H, W, C)`` still forward-splatted by the ``(2, H, W)`` field (pixels, x right, y down).

    ``z`` ``(H, W)`` is the softmax weight. A zero field returns a copy of the still exactly.
    """
    pixels = np.asarray(pixels, dtype=np.float32)
    if pixels.ndim != 3 or field.shape != (2,) + pixels.shape[:2] or z.shape != pixels.shape[:2]:
        raise InputError(f"image {pixels.shape}, field {field.shape} and z {z.shape} do not match")
    if not field.any():
        return pixels.copy()
    chw = np.ascontiguousarray(pixels.transpose(2, 0, 1))
    out = splatter(chw, np.ascontiguousarray(field, dtype=np.float32), np.ascontiguousarray(z, dtype=np.float32))
    return np.ascontiguousarray(out.transpose(1, 2, 0))


def backward_field(field: np.ndarray, z: np.ndarray, splatter: Splatter) -> np.ndarray:
    """Forward field -> backward field (``out(q) = I0(q - B(q))``) at the same size, by splatting
    the field's own values to where each pixel lands. Zero stays exactly zero."""
    if not field.any():
        return np.zeros_like(field, dtype=np.float32)
    f = np.ascontiguousarray(field, dtype=np.float32)
    return splatter(f, f, np.ascontiguousarray(z, dtype=np.float32))


def upsample_field(field: np.ndarray, width: int, height: int) -> np.ndarray:
    """A ``(2, h, w)`` field in its own pixels resized to ``width x height`` output pixels."""
    _, h, w = field.shape
    if (w, h) == (width, height):
        return np.ascontiguousarray(field, dtype=np.float32)
    out = resize_channels(field, width, height)
    out[0] *= np.float32(width / w)
    out[1] *= np.float32(height / h)
    return out


class FieldRenderer:
    """Draws a still displaced by fields from one basis, at the still's size.

    ``field_width x field_height`` is the size to ask the simulator for
    (``simulator.displacement_at(frame, pokes, r.field_width, r.field_height)``); ``render``
    turns such a field into an ``(H, W, C)`` float32 frame.
    """

    def __init__(self, pixels: np.ndarray, basis: ModalBasis, splatter: Splatter, splat_resolution: str = "auto",
                 proxy_factor: float = PROXY_FACTOR, fit: str = "check") -> None:
        pixels = np.asarray(pixels, dtype=np.float32)
        if pixels.ndim != 3 or pixels.shape[2] not in (1, 2, 3, 4) or 0 in pixels.shape:
            raise InputError(f"expected an (H, W, C) image, got shape {pixels.shape}")
        self.pixels = np.ascontiguousarray(pixels)
        self.height, self.width = pixels.shape[:2]
        check_basis_fit(basis, self.width, self.height, fit)
        self.basis = basis
        self.splatter = splatter
        self.proxy = field_size(basis, self.width, self.height, splat_resolution, proxy_factor)
        self.field_width, self.field_height = self.proxy or (self.width, self.height)
        self.z = _resized_plane(motion_weight(basis), self.field_width, self.field_height)
        self._chw: Optional[np.ndarray] = None
        if self.proxy is not None:
            self._xs = np.arange(self.width, dtype=np.float32)[None, :]
            self._ys = np.arange(self.height, dtype=np.float32)[:, None]

    def render(self, field: np.ndarray) -> np.ndarray:
        """``(2, field_height, field_width)`` forward field -> ``(H, W, C)`` frame."""
        expected = (2, self.field_height, self.field_width)
        if field.shape != expected:
            raise InputError(f"field must have shape {expected}, got {field.shape}")
        if not field.any():
            return self.pixels.copy()
        if self.proxy is None:
            return render_with_field(self.pixels, field, self.z, self.splatter)
        from ...exporters.opencv import cv2

        back = upsample_field(backward_field(field, self.z, self.splatter), self.width, self.height)
        out = cv2.remap(self.pixels, self._xs - back[0], self._ys - back[1], cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE)
        return out if out.ndim == 3 else out[:, :, None]

    def field_at(self, simulator: ModalSimulator, frame: float, pokes: Sequence[Poke]) -> np.ndarray:
        return simulator.displacement_at(frame, pokes, self.field_width, self.field_height)

    def frame(self, simulator: ModalSimulator, frame: float, pokes: Sequence[Poke]) -> np.ndarray:
        """The still at simulation ``frame`` under ``pokes``."""
        return self.render(self.field_at(simulator, frame, pokes))


# --------------------------------------------------------------------------------------- sequences
def _pixels_of(image: LoadedImage | np.ndarray) -> np.ndarray:
    return image.pixels if isinstance(image, LoadedImage) else np.asarray(image, dtype=np.float32)


def _frame_list(frames: Iterable[float]) -> list[float]:
    out = []
    for f in frames:
        try:
            value = float(f)
        except (TypeError, ValueError):
            raise InputError(f"frames must be numbers, got {f!r}") from None
        if not math.isfinite(value):
            raise InputError(f"frames must be finite, got {value}")
        out.append(value)
    if not out:
        raise InputError("no frames to render")
    return out


def interactive_frames(image: LoadedImage | np.ndarray, simulator: ModalSimulator, pokes: Sequence[Poke],
                       frames: Iterable[float], splatter: Splatter, job: Optional[Job] = None,
                       splat_resolution: str = "auto", proxy_factor: float = PROXY_FACTOR,
                       fit: str = "check") -> Iterator[np.ndarray]:
    """Yield ``(H, W, C)`` float32 frames of the still at each simulation frame in ``frames``.

    Deterministic: the same frame gives the same picture whatever was rendered before (the
    simulator replays from rest), so a bake equals what a preview showed for those frames.
    """
    job = ensure_job(job)
    times = _frame_list(frames)
    pokes = tuple(pokes)
    renderer = FieldRenderer(_pixels_of(image), simulator.basis, splatter, splat_resolution, proxy_factor, fit)
    for i, t in enumerate(times):
        job.check()
        out = renderer.frame(simulator, t, pokes)
        job.step(i + 1, len(times), "interactive frames")
        yield out


def interactive_displacement_frames(simulator: ModalSimulator, pokes: Sequence[Poke], frames: Iterable[float],
                                    width: int, height: int, splatter: Optional[Splatter] = None,
                                    job: Optional[Job] = None, splat_resolution: str = "auto",
                                    proxy_factor: float = PROXY_FACTOR) -> Iterator[np.ndarray]:
    """Yield ``(2, height, width)`` float32 displacement fields in pixels (x right, y down).

    Without a splatter the fields are *forward* (pixel ``p`` of the still moves to ``p + d(p)``),
    exactly ``simulator.displacement_at``. With one they are *backward* (``out(q) = I0(q - d(q))``,
    what Blender's Displace node needs), splatted at the proxy size when the output is much
    larger than the basis, as ``FieldRenderer`` does.
    """
    job = ensure_job(job)
    times = _frame_list(frames)
    pokes = tuple(pokes)
    width, height = int(width), int(height)
    proxy = field_size(simulator.basis, width, height, splat_resolution, proxy_factor) if splatter else None
    fw, fh = proxy or (width, height)
    z = _resized_plane(motion_weight(simulator.basis), fw, fh) if splatter else None
    for i, t in enumerate(times):
        job.check()
        field = simulator.displacement_at(t, pokes, fw, fh)
        if splatter is not None:
            field = upsample_field(backward_field(field, z, splatter), width, height)
        job.step(i + 1, len(times), "interactive displacement")
        yield field


# --------------------------------------------------------------------------------------- bake
def simulation_params(simulator: ModalSimulator, pokes: Sequence[Poke]) -> dict:
    """What decides an interactive bake, as JSON-able data for the sidecar."""
    basis = simulator.basis
    return {
        "engine_version": __version__,
        "basis": {"width": basis.width, "height": basis.height, "bins": basis.bins.tolist(),
                  "frequencies_hz": [round(float(f), 6) for f in basis.frequencies_hz],
                  "masked": basis.mask is not None},
        "damping": float(simulator.damping), "stiffness_scale": float(simulator.stiffness_scale),
        "mass_scale": float(simulator.mass_scale), "fps": float(simulator.fps),
        "pokes": [asdict(p) for p in pokes],
        "convention": "x, y normalised image coordinates (y down); strength in pixels of the basis",
    }


def bake_to_dir(image: LoadedImage, simulator: ModalSimulator, pokes: Sequence[Poke], frames: Sequence[float],
                out_dir: Path | str, splatter: Splatter, images: bool = True, displacement: bool = False,
                frame_prefix: str = FRAME_PREFIX, displacement_prefix: str = DISPLACEMENT_PREFIX,
                overwrite: bool = False, job: Optional[Job] = None, splat_resolution: str = "auto",
                fit: str = "check") -> dict:
    """Bake ``frames`` to ``out_dir``: ``frame_####.png`` (``images``) and/or ``disp_####.exr``
    (forward, pixels) + ``disp_node_####.exr`` (Displace-node vectors, ``displacement``).

    Each set is written as one transaction; a failure or cancel removes the sets already
    written, so the folder ends with all of it or nothing new. Returns
    ``{"files", "count", "scale"}`` (``scale`` of the Displace-node maps, or None).
    """
    job = ensure_job(job)
    if not (images or displacement):
        raise InputError("nothing to bake: ask for images, displacement maps or both")
    times = _frame_list(frames)
    n = len(times)
    pokes = tuple(pokes)
    check_basis_fit(simulator.basis, image.width, image.height, fit)
    params = simulation_params(simulator, pokes)
    params.update(frames=times, image={"path": image.path, "width": image.width, "height": image.height})
    out_dir = Path(out_dir)
    scale = None
    with AllOrNothing(out_dir) as outputs:  # frames and both map sets are one output
        if images:
            outputs.add(write_image_sequence(
                interactive_frames(image, simulator, pokes, times, splatter, job, splat_resolution, fit=fit),
                out_dir, frame_prefix, count=n, fmt="png", source_linear=image.linear, overwrite=overwrite,
                sidecar=params))
        if displacement:
            w, h = image.width, image.height
            args = (simulator, pokes, times, w, h)
            outputs.add(write_displacement_sequence(interactive_displacement_frames(*args, job=job), n, out_dir,
                                                    displacement_prefix, overwrite=overwrite, kind="pixels",
                                                    sidecar=params))
            # Backward fields are forward values moved around: the forward maximum bounds them.
            scale = 1e-6
            for field in interactive_displacement_frames(*args):
                job.check()
                scale = max(scale, float(np.abs(field).max()))
            outputs.add(write_displacement_sequence(
                interactive_displacement_frames(*args, splatter=splatter, job=job, splat_resolution=splat_resolution),
                n, out_dir, f"{displacement_prefix}_node", overwrite=overwrite, scale=scale, kind="displace_node",
                sidecar=params))
    return {"files": outputs.paths, "count": n, "scale": scale}
