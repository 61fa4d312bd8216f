"""High-level operations shared by the CLI and the Blender add-on.

Each takes plain values and a ``Job``, writes its outputs as one transaction (all files or
none), and returns what it wrote. Nothing here parses arguments or prints.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import numpy as np

from ...exporters import colors
from ...exporters.atomic import AllOrNothing, atomic_write_bytes, check_overwrite, ensure_folder, protected_inputs
from ...exporters.displacement import write_displacement_sequence
from ...exporters.preview import write_gif, write_mp4
from ...exporters.sequence import write_image_sequence
from ...exporters.sidecar import encode_sidecar, sidecar_document

from .. import __version__
from ..errors import InputError
from ..media.imaging import LoadedImage, load_image
from ..progress import Job, ensure_job
from .render import Timing, check_fit, displacement_frames, frame_count, make_splatter, render_frames
from ..motion.spectral_volume import SpectralVolume
from ..motion.sv_file import load_spectral_volume

FORMATS = ("png", "exr", "mp4", "gif")
DEFAULT_DEPTH = {"png": 8, "exr": "half", "mp4": 8, "gif": 8}
PREVIEW_MAX_WIDTH = 480


@dataclass
class RenderOptions:
    """Everything that decides what a render looks like; recorded verbatim in the sidecar."""

    frames: Optional[int] = None
    fps: float = 30.0
    slowmo: float = 1.0
    loop: bool = True
    amplitude: float = 1.0
    anchor: bool = True
    fit: str = "check"
    backend: str = "onnx"
    renderer: str = "auto"  # neural when its shipped weights are the default, else splat (render.make_splatter)
    device: str = "auto"
    splat_resolution: str = "auto"
    motion_upsample: str = "guided"  # proxy field to full size: guided by the still, or bilinear
    threads: Optional[int] = None

    @property
    def timing(self) -> Timing:
        return Timing(fps=self.fps, slowmo=self.slowmo, frames=self.frames, loop=self.loop)


@dataclass
class RenderResult:
    files: list[Path]
    frames: int
    provider: str
    messages: list[str] = field(default_factory=list)


@protected_inputs()  # the still and the motion file it reads cannot be among its outputs
def render_to_dir(image_path: Path | str | LoadedImage, motion: Path | str | SpectralVolume, out_dir: Path | str,
                  options: RenderOptions, fmt: str = "png", depth: Any = None, prefix: str = "frame",
                  preview: Optional[str] = None, overwrite: bool = False, job: Optional[Job] = None,
                  log: Callable[[str], None] | None = None, splatter: Optional[Any] = None) -> RenderResult:
    """Animate a still: a frame sequence (or one video file), its sidecar, optionally a preview,
    written all or nothing.

    Args:
        image_path: the still, as a file or an already loaded image.
        motion: the spectral volume, as a ``.gidsv`` file or a volume.
        out_dir: the output folder (made when missing).
        options: timing, amplitude, fit, backend, renderer and device (``RenderOptions``).
        fmt: "png", "exr", "mp4" or "gif".
        depth: bits per channel of the frames (default: the format's).
        prefix: the frames' name before their number.
        preview: "gif" or "mp4" beside a sequence, or None.
        overwrite: replace existing outputs (otherwise they are refused before any work).
        job: progress and cancellation.
        log: hears what making the renderer said (a GPU that fell back to the CPU).
        splatter: a frame renderer the caller keeps (``Engine`` does, so its onnxruntime sessions
            are made once, not per call); without one, the renderer ``options`` name is made here.

    Returns:
        The files written, the frame count, the provider and the messages.

    Raises:
        InputError: a bad argument, or motion that does not fit the image.
        BudgetError: the render is over the frame or memory budget.
        ExportError: an output cannot be written, exists, or is one of the inputs.
        Cancelled: ``job`` was cancelled (nothing is left behind).
    """
    job = ensure_job(job)
    if fmt not in FORMATS:
        raise InputError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if preview not in (None, "mp4", "gif"):
        raise InputError(f"preview must be mp4 or gif, got {preview!r}")
    image = image_path if isinstance(image_path, LoadedImage) else load_image(image_path)
    sv = motion if isinstance(motion, SpectralVolume) else load_spectral_volume(motion)
    options.timing.validate()
    check_fit(sv, image.width, image.height, options.fit)  # fail before any work
    sv.scaled(options.amplitude)  # validates the amplitude
    messages: list[str] = []
    if splatter is None:
        splatter = make_splatter(options.backend, options.device, options.threads, log=messages.append,
                                 renderer=options.renderer)
    if log:
        for m in messages:
            log(m)
    out_dir = Path(out_dir)
    n = frame_count(sv, options.timing)
    depth = depth if depth is not None else DEFAULT_DEPTH[fmt]
    params = _params(image, sv, motion, options, fmt=fmt, depth=depth, frames=n,
                     provider=getattr(getattr(splatter, "info", None), "provider", splatter.name))
    frames = render_frames(image, sv, splatter, options.timing, options.amplitude, options.anchor, options.fit, job,
                           splat_resolution=options.splat_resolution, motion_upsample=options.motion_upsample)

    if fmt in ("mp4", "gif"):
        target = out_dir / f"{prefix}.{fmt}"
        sidecar_path = out_dir / f"{prefix}.json"
        if not overwrite:
            for p in (target, sidecar_path):
                if p.exists():
                    from ...exporters.errors import OutputExistsError

                    raise OutputExistsError(f"{p} already exists; pass --overwrite to replace it")
        writer = write_mp4 if fmt == "mp4" else write_gif
        with AllOrNothing(out_dir, keep_replaced=True) as outputs:  # the video and its sidecar are one output
            ensure_folder(out_dir)
            writer(_display(frames, image.linear), target, fps=options.fps, count=n, overwrite=overwrite)
            outputs.add(target)
            doc = sidecar_document("loop", params, {"video": target.name})
            outputs.add(atomic_write_bytes(sidecar_path, encode_sidecar(doc), overwrite=overwrite))
        return RenderResult([target, sidecar_path], n, params["provider"], messages)

    keep: list[np.ndarray] = []
    if preview:
        frames = _tee_small(frames, image.linear, keep)
        target = out_dir / f"{prefix}_preview.{preview}"
        check_overwrite(target, overwrite)  # before rendering, not after the frames are in place
    with AllOrNothing(out_dir, keep_replaced=True) as outputs:  # the sequence and its preview are one output
        files = outputs.add(write_image_sequence(frames, out_dir, prefix, fmt=fmt, depth=depth, count=n,
                                                 source_linear=image.linear, overwrite=overwrite, start=1,
                                                 sidecar=params))
        if preview:
            writer = write_mp4 if preview == "mp4" else write_gif
            writer((k.astype(np.float32) for k in keep), target, fps=options.fps, count=len(keep), overwrite=overwrite)
            files += outputs.add(target)
    return RenderResult(list(files), n, params["provider"], messages)


@protected_inputs()  # the motion file (and still) it reads cannot be among its outputs
def displace_to_dir(size: tuple[int, int], motion: Path | str | SpectralVolume, out_dir: Path | str,
                    options: RenderOptions, kind: str = "both", prefix: str = "disp",
                    overwrite: bool = False, job: Optional[Job] = None,
                    source_image: Optional[str] = None) -> list[Path]:
    """Per-frame displacement maps of a motion at an image's size, written all or nothing.

    Args:
        size: ``(width, height)`` of the image the maps displace.
        motion: the spectral volume, as a ``.gidsv`` file or a volume.
        out_dir: the output folder.
        options: timing, amplitude, fit, backend and device (``RenderOptions``).
        kind: "pixels" (forward displacement in pixels), "displace-node" (backward maps scaled for
            Blender's Displace node, with the scale in their sidecar) or "both".
        prefix: the maps' name before their number (the node variant adds ``_node``).
        overwrite: replace existing outputs.
        job: progress and cancellation.
        source_image: the image's path, recorded in the sidecars.

    Returns:
        The files written.

    Raises:
        InputError: a bad argument.
        BudgetError: over the frame or memory budget.
        ExportError: an output cannot be written, exists, or is one of the inputs.
        Cancelled: ``job`` was cancelled (nothing is left behind).
    """
    job = ensure_job(job)
    if kind not in ("both", "pixels", "displace-node"):
        raise InputError(f"kind must be both, pixels or displace-node, got {kind!r}")
    width, height = size
    sv = motion if isinstance(motion, SpectralVolume) else load_spectral_volume(motion)
    timing = options.timing
    n = frame_count(sv, timing)
    args = (sv, width, height, timing, options.amplitude, options.anchor, options.fit)
    kwargs: dict[str, str] = {"splat_resolution": options.splat_resolution}
    params = {
        "engine_version": __version__, "source_image": source_image, "size": [width, height],
        "motion": _motion_info(sv, motion), "frames": n, "options": asdict(options),
    }
    with AllOrNothing(out_dir) as outputs:  # "both" is all or nothing too
        if kind in ("both", "pixels"):
            outputs.add(write_displacement_sequence(displacement_frames(*args, job=job, **kwargs), n, out_dir, prefix,
                                                    overwrite=overwrite, kind="pixels", sidecar=params))
        if kind in ("both", "displace-node"):
            # Backward fields are forward values moved around, so the forward maximum bounds them.
            scale = 1e-6
            for field in displacement_frames(*args):
                job.check()
                scale = max(scale, float(np.abs(field).max()))
            splatter = make_splatter(options.backend, options.device, options.threads)
            outputs.add(write_displacement_sequence(displacement_frames(*args, splatter=splatter, job=job, **kwargs), n,
                                                    out_dir, f"{prefix}_node", overwrite=overwrite, scale=scale,
                                                    kind="displace_node", sidecar=params))
    return outputs.paths


def _params(image: LoadedImage, sv: SpectralVolume, motion: Any, options: RenderOptions, **more: Any) -> dict:
    return {
        "engine_version": __version__,
        "image": {"path": image.path, "width": image.width, "height": image.height,
                  "channels": int(image.pixels.shape[2]), "bit_depth": image.bit_depth, "linear": image.linear},
        "motion": _motion_info(sv, motion),
        "options": asdict(options),
        **more,
    }


def _motion_info(sv: SpectralVolume, motion: Any) -> dict:
    return {"file": str(motion) if not isinstance(motion, SpectralVolume) else None,
            "K": sv.K, "width": sv.width, "height": sv.height, "fps": sv.fps,
            "num_frames": sv.num_frames, "source": sv.source}


def _display(frames: Iterator[np.ndarray], linear: bool) -> Iterator[np.ndarray]:
    """Video files are display-referred: encode linear sources to sRGB, drop alpha."""
    for f in frames:
        rgb = f[:, :, :3]
        yield colors.linear_to_srgb(rgb) if linear else rgb


def _tee_small(frames: Iterator[np.ndarray], linear: bool, keep: list[np.ndarray]) -> Iterator[np.ndarray]:
    """Pass frames through while keeping a small display copy for the preview (≤ 480 px wide)."""
    from ...exporters.opencv import cv2

    for f in frames:
        rgb = f[:, :, :3]
        if linear:
            rgb = colors.linear_to_srgb(rgb)
        h, w = rgb.shape[:2]
        if w > PREVIEW_MAX_WIDTH:
            rgb = cv2.resize(rgb, (PREVIEW_MAX_WIDTH, max(1, round(h * PREVIEW_MAX_WIDTH / w))),
                             interpolation=cv2.INTER_AREA)
        keep.append(np.clip(rgb, 0, 1).astype(np.float16))
        yield f
