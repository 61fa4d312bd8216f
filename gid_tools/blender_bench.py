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
from .blender_scenes import camera_filling_plane
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


def _render_seconds(scene: bpy.types.Scene, frames: list[int], folder: Path) -> float:
    """Median wall time of rendering each of ``frames`` (a first, untimed render warms Cycles up)."""
    scene.render.filepath = str(folder / "warm.png")
    bpy.ops.render.render(write_still=True)
    times = []
    for f in frames:
        scene.frame_set(f)
        scene.render.filepath = str(folder / f"r{f:04d}.png")
        t0 = time.perf_counter()
        bpy.ops.render.render(write_still=True)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def live_benchmark(width: int = 1920, height: int = 1080, samples: int = 4,
                   frames: tuple[int, ...] = (2, 37, 75)) -> dict:
    """Cycles CPU seconds per frame of a camera-filling textured plane: live motion (the node group)
    against the same plane showing the baked sequence; the .blend with the packed live volume
    against the baked 4K sequence on disk."""
    from ..addon.live import nodes as live_nodes
    from ..exporters.frames import encode_exr, encode_png
    from ..gid_engine.media.imaging import from_array
    from ..gid_engine.rendering.live import ATLAS_PAD, backward_volume
    from ..gid_engine.rendering.render import Timing, make_splatter, render_frames

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rng = np.random.default_rng(0)
        still = cv2.GaussianBlur((rng.random((height, width, 3)) * 255).astype(np.uint8), (0, 0), 2.0)
        cv2.imwrite(str(folder / "backdrop.png"), still)
        motion = smooth_volume(256, 144).scaled(0.3)
        splatter = make_splatter("onnx", "cpu", None)
        live = backward_volume(motion, splatter)
        image = from_array(still[:, :, ::-1].astype(np.float32) / 255.0)
        wanted = set(frames) | {1}
        seq = folder / "seq"
        seq.mkdir()
        for i, frame in enumerate(render_frames(image, motion, splatter, Timing(fps=30), 1.0, True, "stretch")):
            if i + 1 in wanted:
                (seq / f"frame_{i + 1:04d}.png").write_bytes(encode_png(frame, 8))
            if i + 1 >= max(wanted):
                break
        big = from_array(cv2.resize(still, (3840, 2160))[:, :, ::-1].astype(np.float32) / 255.0)
        first_4k = next(iter(render_frames(big, motion, splatter, Timing(fps=30, frames=2), 1.0, True, "stretch")))
        png_4k = len(encode_png(first_4k, 8))

        scene, nt, tex = camera_filling_plane(width, height, samples=samples, exact=False, material="backdrop")
        tex.image = bpy.data.images.load(str(seq / "frame_0001.png"))
        tex.image.source = "SEQUENCE"
        tex.image_user.frame_duration, tex.image_user.use_auto_refresh = 150, True
        baked = _render_seconds(scene, list(frames), folder)

        scene, nt, tex = camera_filling_plane(width, height, samples=samples, exact=False, material="backdrop")
        tex.image = bpy.data.images.load(str(folder / "backdrop.png"))
        tex.image.pack()
        atlas = live_nodes.pack_atlas("GID Live Motion Atlas", encode_exr(live.atlas(), "half", "zip"))
        layout = live_nodes.Layout(live.bins, live.width, live.height, live.period, live.fps, ATLAS_PAD)
        node = nt.nodes.new("ShaderNodeGroup")
        node.node_tree = live_nodes.build_group("GID Live Motion", atlas, layout)
        coords = nt.nodes.new("ShaderNodeTexCoord")
        nt.links.new(coords.outputs["UV"], node.inputs["Vector"])
        nt.links.new(node.outputs["Vector"], tex.inputs["Vector"])
        live_nodes.drive_time(node, scene)
        live_s = _render_seconds(scene, list(frames), folder)
        bpy.ops.wm.save_as_mainfile(filepath=str(folder / "live.blend"))
        blend_bytes = (folder / "live.blend").stat().st_size
    return {"task": f"Cycles CPU frame {width}x{height}, {samples} samples: live motion vs baked sequence",
            "live_s": live_s, "baked_s": baked, "ratio": live_s / baked, "bins": live.bins,
            "blend_bytes": blend_bytes, "baked_4k_bytes_estimate": 150 * png_4k,
            "machine": machine_description(), "blender": bpy.app.version_string}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gid.gid_tools.blender_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=None)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--live", action="store_true", help="live motion vs the baked sequence in Cycles")
    args = parser.parse_args(argv)
    w, h = (int(v) for v in args.size.split("x"))
    if args.live:
        row = live_benchmark(w, h)
        print(f"{row['task']} — Blender {row['blender']}, {row['machine']}")
        print("| live s/frame | baked s/frame | ratio | bins | .blend (live, packed) | baked 4K sequence (150 PNG) |")
        print("|---|---|---|---|---|---|")
        print(f"| {row['live_s']:.2f} | {row['baked_s']:.2f} | {row['ratio']:.2f}x | {row['bins']} | "
              f"{row['blend_bytes'] / 2**20:.1f} MiB | {row['baked_4k_bytes_estimate'] / 2**30:.2f} GiB |")
        if args.json:
            Path(args.json).write_text(json.dumps(row, indent=2))
        return 0
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
