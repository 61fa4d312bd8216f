"""Benchmark: bake a 150-frame 1920x1080 loop into Blender (time and peak memory).

Run with the real ``bpy`` module: ``python -m gid.gid_tools.blender_bench``. The motion is a seeded, smooth
256x144 spectral volume (what the learned prior predicts at model resolution) saved next to the
.blend, so the figure covers what an artist waits for after prediction: render, encode, write and
load the sequence into Blender with a texture node, through the add-on's own operator.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import bpy
import numpy as np

from ..exporters.opencv import cv2
from .bench import machine_description, smooth_volume
from ..gid_engine.motion.sv_file import save_spectral_volume
from ..addon import props
from ..addon.demo import empty_file_with_gid

GOAL_SECONDS = 30.0
GOAL_PEAK_GIB = 2.0


def bake_benchmark(width: int = 1920, height: int = 1080, frames: int = 150) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rng = np.random.default_rng(0)
        still = cv2.GaussianBlur((rng.random((height, width, 3)) * 255).astype(np.uint8), (0, 0), 2.0)
        cv2.imwrite(str(folder / "backdrop.png"), still)
        motion = folder / "motion.gidsv"
        save_spectral_volume(smooth_volume(256, 144).scaled(0.3), motion)

        with empty_file_with_gid():
            bpy.ops.wm.save_as_mainfile(filepath=str(folder / "bench.blend"))
            image = bpy.data.images.load(str(folder / "backdrop.png"))
            image.gid.motion_path = str(motion)
            image.gid.frames = frames
            t0 = time.perf_counter()
            bpy.ops.gid.bake_loop(image=image.name, add_node=False)
            seconds = time.perf_counter() - t0
            loaded = props.loop_image(image.gid)
            assert loaded is not None and image.gid.loop_frames == frames
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux: KiB
    return {"task": f"bake {frames}-frame {width}x{height} loop into Blender", "seconds": seconds,
            "peak_rss_gib": peak_gib, "goal_seconds": GOAL_SECONDS, "goal_peak_gib": GOAL_PEAK_GIB,
            "machine": machine_description(), "blender": bpy.app.version_string}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gid.gid_tools.blender_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=None)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--frames", type=int, default=150)
    args = parser.parse_args(argv)
    w, h = (int(v) for v in args.size.split("x"))
    row = bake_benchmark(w, h, args.frames)
    print(f"{row['task']} — Blender {row['blender']}, {row['machine']}")
    print("| measured | goal | margin |\n|---|---|---|")
    print(f"| {row['seconds']:.1f} s | ≤ {GOAL_SECONDS:g} s | {GOAL_SECONDS / row['seconds']:.1f}x |")
    print(f"| {row['peak_rss_gib']:.2f} GiB peak RSS (whole process, Blender included) | ≤ {GOAL_PEAK_GIB:g} GiB "
          f"| {GOAL_PEAK_GIB / row['peak_rss_gib']:.1f}x |")
    if args.json:
        Path(args.json).write_text(json.dumps(row, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
