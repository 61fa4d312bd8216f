"""Make tests/data/live_4.2.blend: live motion saved by the oldest supported Blender (4.2 LTS).

    .venv/bin/python tools/make_live_blend.py .venv-blender/4.2/bin/python [OUT.blend]

The engine side runs here (the tree clip's motion at 96x72, its backward volume as a half-float
EXR atlas); the scene is built by that Blender's Python with ``addon/live/nodes.py`` and
``gid_tools/blender_scenes.py`` alone, both loaded by file path (a camera-filling plane showing the
tree still, 96x72, packed), so the file is what 4.2 writes.
tests/test_addon_live.py renders it in every later Blender without the extension.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "tests" / "data"
BUILD = r"""
import importlib.util, json, sys
import bpy
def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec); sys.modules[name] = module; spec.loader.exec_module(module)
    return module
nodes, scenes = load("live_nodes", sys.argv[1]), load("blender_scenes", sys.argv[4])
meta = json.loads(open(sys.argv[3]).read())
scene, nt, tex = scenes.camera_filling_plane(*meta["size"])
tex.image = bpy.data.images.load(meta["still"]); tex.image.pack()
atlas = nodes.pack_atlas("GID Live Motion Atlas still", open(meta["atlas"], "rb").read())
layout = nodes.Layout(*meta["layout"])
node = nt.nodes.new("ShaderNodeGroup"); node.node_tree = nodes.build_group("GID Live Motion still", atlas, layout)
coords = nt.nodes.new("ShaderNodeTexCoord")
nt.links.new(coords.outputs["UV"], node.inputs["Vector"]); nt.links.new(node.outputs["Vector"], tex.inputs["Vector"])
nodes.drive_time(node, scene)
bpy.ops.wm.save_as_mainfile(filepath=sys.argv[2], compress=True)
print("saved with Blender", bpy.app.version_string)
"""


def write_blend(blender_python: str, out: Path, live: Any, still_png: Path) -> subprocess.CompletedProcess:
    """Have ``blender_python`` (a Blender's own Python, ``gid`` not importable) save ``out``: the
    camera-filling plane showing ``still_png`` (packed) through the "GID Live Motion" group of the
    live volume ``live`` (its atlas packed), the time drivers set."""
    import json

    from gid.exporters.frames import encode_exr
    from gid.gid_engine.rendering.live import ATLAS_PAD

    with tempfile.TemporaryDirectory() as tmp:
        atlas = Path(tmp) / "atlas.exr"
        atlas.write_bytes(encode_exr(live.atlas(), "half", "zip"))
        meta = Path(tmp) / "meta.json"
        meta.write_text(json.dumps({"size": [live.width, live.height], "still": str(still_png), "atlas": str(atlas),
                                    "layout": [live.bins, live.width, live.height, live.period, live.fps, ATLAS_PAD]}))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "BLENDER_"))}
        return subprocess.run([blender_python, "-c", BUILD, str(REPO / "addon" / "live" / "nodes.py"), str(out),
                               str(meta), str(REPO / "gid_tools" / "blender_scenes.py")],
                              capture_output=True, text=True, env=env, cwd=tmp, timeout=600)


def main(blender_python: str, out: str = "") -> int:
    """Build the .blend with ``blender_python`` into ``out`` (default tests/data/live_4.2.blend)."""
    from gid.exporters.opencv import cv2
    from gid.gid_engine.engine import Engine
    from gid.gid_engine.motion.extract import extract_motion
    from gid.gid_engine.motion.sv_file import save_spectral_volume

    motion = extract_motion(REPO / "samples" / "tree.avi", max_side=96)
    still = cv2.resize(cv2.imread(str(REPO / "samples" / "tree_still.png")), (motion.width, motion.height),
                       interpolation=cv2.INTER_AREA)
    live = Engine(device="cpu").live_volume(motion)
    OUT.mkdir(exist_ok=True)
    save_spectral_volume(motion, OUT / "live_motion.gidsv", overwrite=True)
    cv2.imwrite(str(OUT / "live_still.png"), still)
    done = write_blend(blender_python, Path(out) if out else OUT / "live_4.2.blend", live, OUT / "live_still.png")
    print(done.stdout[-500:], done.stderr[-2000:])
    print(f"{live.bins} bins; {still.shape}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
