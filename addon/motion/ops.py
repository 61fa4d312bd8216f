"""Operators that make the image's motion: Predict Motion and Extract Motion from Video.

Both write ``<output>/motion.gidsv`` atomically through the engine (``Engine.predict`` /
``Engine.extract``, then ``Engine.save_motion``) and remember it as the image's ``motion_path``;
a ``.gidsv`` already there is replaced only when it is one of ours.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

import bpy

from .. import blender_io as bio
from ..ops import GidJobOperator, Report, Task, checked_source, image_settings
from ...gid_engine.progress import Job
from ..utils import engines
from ..utils.errors import MotionMissingError
from ..utils.paths import MOTION_FILE, leave_no_trace, motion_overwrite_policy


def source_file(image: bpy.types.Image) -> Optional[Path]:
    """The still's file when it has one on disk (extraction does not need it)."""
    if image is None or image.source != "FILE" or image.packed_file is not None or not image.filepath:
        return None
    try:
        path = bio.image_path(image)
    except (ValueError, RuntimeError):
        return None
    return path if path.is_file() else None


def save_motion(device: str, make_motion: Callable[[Job], Any], target: Path,
                overwrite: bool) -> Callable[[Job], dict]:
    """A job that makes a SpectralVolume and ends by writing ``target`` atomically; its result
    says what was written and what the engine said on the way."""

    def run(job: Job) -> dict:
        with engines.listening() as said:
            sv = make_motion(job)
            engines.engine(device).save_motion(sv, target, overwrite=overwrite, job=job)
        return {"path": target, "size": (sv.width, sv.height), "source": sv.source, "messages": said,
                "padding": sv.extra.get("padding") if isinstance(sv.extra, dict) else None}

    return run


def finish_motion(ref: bio.SourceRef, verb: str) -> Callable[[bpy.types.Context, dict], list[Report]]:
    def finish(context: bpy.types.Context, result: dict) -> list[Report]:
        settings = image_settings(ref)
        settings.motion_path = bio.blender_relpath(result["path"])
        w, h = result["size"]
        note = " (short clip: played forwards and backwards)" if result.get("padding") == "mirror" else ""
        reports: list[Report] = [("INFO", m) for m in result.get("messages", ())]
        return reports + [("INFO", f"{verb} {w}x{h} motion into {settings.motion_path}{note}")]

    return finish


def prepare_extract(context: bpy.types.Context, image_name: str = "") -> Task:
    """Video -> spectral volume -> ``<output>/motion.gidsv``, remembered as ``motion_path``."""
    ref = bio.source_from_context(context, image_name)
    bio.check_local(ref.image())  # the motion file is remembered on the image
    settings = ref.image().gid
    if not settings.video_path:
        raise MotionMissingError("choose a video to extract the motion from (Video in the GID panel)")
    video = bio.file_path(settings.video_path, "video")
    if not video.exists():
        raise MotionMissingError(f"video not found: {video}")
    source = source_file(ref.image())
    folder = bio.resolve_output_dir(settings.output_dir, ref.image_name, source)
    target = folder / MOTION_FILE
    overwrite = motion_overwrite_policy(target)
    device = settings.device

    def extract(job: Job) -> Any:
        return engines.engine(device).extract(video, job=job)

    run = leave_no_trace(save_motion(device, extract, target, overwrite), folder,
                         claim=(folder, ref.image_name, source))
    reports = [("INFO", f"replacing the previous GID motion file {target}")] if overwrite else []
    return Task("Extracting motion", ref, run, finish_motion(ref, "Extracted"), reports)


def prepare_predict(context: bpy.types.Context, image_name: str = "") -> Task:
    """Image -> learned motion prior -> ``<output>/motion.gidsv`` (needs the shipped weights)."""
    ref, path = checked_source(context, image_name)
    settings = ref.image().gid
    folder = bio.resolve_output_dir(settings.output_dir, ref.image_name, path)
    target = folder / MOTION_FILE
    overwrite = motion_overwrite_policy(target)
    # 0 is "automatic": the engine picks the model's steps on a GPU and fewer on the CPU
    seed, steps, device = settings.seed, settings.steps or None, settings.device
    strength = settings.variation

    def predict(job: Job) -> Any:
        return engines.engine(device).predict(path, seed=seed, steps=steps, job=job, init_strength=strength)

    run = leave_no_trace(save_motion(device, predict, target, overwrite), folder, claim=(folder, ref.image_name, path))
    return Task("Predicting motion", ref, run, finish_motion(ref, "Predicted"))


class GID_OT_predict_motion(GidJobOperator, bpy.types.Operator):
    """Predict the image's motion with the learned motion prior (writes motion.gidsv)"""

    bl_idname = "gid.predict_motion"
    bl_label = "Predict Motion"

    def prepare(self, context: bpy.types.Context) -> Task:
        return prepare_predict(context, self.image)


class GID_OT_extract_motion(GidJobOperator, bpy.types.Operator):
    """Extract the motion of the reference video into a spectral volume (motion.gidsv)"""

    bl_idname = "gid.extract_motion"
    bl_label = "Extract Motion from Video"

    def prepare(self, context: bpy.types.Context) -> Task:
        return prepare_extract(context, self.image)


CLASSES: list[type] = [GID_OT_predict_motion, GID_OT_extract_motion]
