"""Make tests/data/live_4.2.blend: live motion saved by the oldest supported Blender (4.2 LTS).

    .venv/bin/python tools/make_live_blend.py .venv-blender/4.2/bin/python

The engine side runs here (the tree clip's motion at 96x72, its backward volume as a half-float
EXR atlas); the scene is built by that Blender's Python with ``addon/live/nodes.py`` alone (a
camera-filling plane showing the tree still, 96x72, packed), so the file is what 4.2 writes.
tests/test_addon_live.py renders it in every later Blender without the extension.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "tests" / "data"
BUILD = r"""
import importlib.util, json, sys
import bpy
spec = importlib.util.spec_from_file_location("live_nodes", sys.argv[1])
nodes = importlib.util.module_from_spec(spec); sys.modules["live_nodes"] = nodes; spec.loader.exec_module(nodes)
meta = json.loads(open(sys.argv[3]).read())
bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
scene = bpy.context.scene
w, h = meta["size"]
r = scene.render
r.engine, r.resolution_x, r.resolution_y, r.resolution_percentage, r.fps = "CYCLES", w, h, 100, 30
r.filter_size = 0.01
scene.cycles.samples, scene.cycles.use_denoising = 1, False
scene.view_settings.view_transform, scene.view_settings.look = "Standard", "None"
mesh = bpy.data.meshes.new("plane")
mesh.from_pydata([(-w / h, -1, 0), (w / h, -1, 0), (w / h, 1, 0), (-w / h, 1, 0)], [], [(0, 1, 2, 3)])
for loop, co in zip(mesh.uv_layers.new().data, [(0, 0), (1, 0), (1, 1), (0, 1)]):
    loop.uv = co
plane = bpy.data.objects.new("plane", mesh); scene.collection.objects.link(plane)
cam = bpy.data.objects.new("cam", bpy.data.cameras.new("cam"))
cam.data.type, cam.data.ortho_scale, cam.location = "ORTHO", 2 * w / h, (0, 0, 5)
scene.collection.objects.link(cam); scene.camera = cam
image = bpy.data.images.load(meta["still"]); image.pack()
mat = bpy.data.materials.new("still"); mat.use_nodes = True
nt = mat.node_tree; nt.nodes.clear()
tex = nt.nodes.new("ShaderNodeTexImage"); tex.image, tex.interpolation = image, "Linear"
emit, out = nt.nodes.new("ShaderNodeEmission"), nt.nodes.new("ShaderNodeOutputMaterial")
nt.links.new(tex.outputs["Color"], emit.inputs["Color"]); nt.links.new(emit.outputs[0], out.inputs["Surface"])
mesh.materials.append(mat)
atlas = nodes.pack_atlas("GID Live Motion Atlas still", open(meta["atlas"], "rb").read())
layout = nodes.Layout(*meta["layout"])
node = nt.nodes.new("ShaderNodeGroup"); node.node_tree = nodes.build_group("GID Live Motion still", atlas, layout)
coords = nt.nodes.new("ShaderNodeTexCoord")
nt.links.new(coords.outputs["UV"], node.inputs["Vector"]); nt.links.new(node.outputs["Vector"], tex.inputs["Vector"])
nodes.drive_time(node, scene)
bpy.ops.wm.save_as_mainfile(filepath=sys.argv[2], compress=True)
print("saved with Blender", bpy.app.version_string)
"""


def main(blender_python: str) -> int:
    import json

    import numpy as np

    from gid.exporters.frames import encode_exr
    from gid.exporters.opencv import cv2
    from gid.gid_engine.engine import Engine
    from gid.gid_engine.motion.extract import extract_motion
    from gid.gid_engine.motion.sv_file import save_spectral_volume
    from gid.gid_engine.rendering.live import ATLAS_PAD

    motion = extract_motion(REPO / "samples" / "tree.avi", max_side=96)
    still = cv2.resize(cv2.imread(str(REPO / "samples" / "tree_still.png")), (motion.width, motion.height),
                       interpolation=cv2.INTER_AREA)
    live = Engine(device="cpu").live_volume(motion)
    OUT.mkdir(exist_ok=True)
    save_spectral_volume(motion, OUT / "live_motion.gidsv", overwrite=True)
    cv2.imwrite(str(OUT / "live_still.png"), still)
    with tempfile.TemporaryDirectory() as tmp:
        atlas = Path(tmp) / "atlas.exr"
        atlas.write_bytes(encode_exr(live.atlas(), "half", "zip"))
        meta = Path(tmp) / "meta.json"
        meta.write_text(json.dumps({"size": [motion.width, motion.height], "still": str(OUT / "live_still.png"),
                                    "atlas": str(atlas), "layout": [live.bins, live.width, live.height, live.period,
                                                                    live.fps, ATLAS_PAD]}))
        done = subprocess.run([blender_python, "-c", BUILD, str(REPO / "addon" / "live" / "nodes.py"),
                               str(OUT / "live_4.2.blend"), str(meta)], capture_output=True, text=True)
    print(done.stdout[-500:], done.stderr[-2000:])
    print(f"{live.bins} bins; {np.asarray(still).shape}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
