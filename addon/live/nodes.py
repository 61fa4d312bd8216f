"""The "GID Live Motion" shader node group: the backward spectral volume evaluated where Blender renders.

The group takes the still's texture coordinates and returns warped ones for the user's Image
Texture node: ``uv - amplitude * b(uv, tau) / size`` with ``b`` the backward field of
``gid_engine.rendering.live`` summed from its Fourier bins, each bin a tile of one packed float
image (the atlas). Time comes from the scene: the group's Frame and FPS inputs are driven by the
simple expressions ``frame`` and ``fps`` (a variable reading the scene's frame rate), which Blender
evaluates without Python, so a render farm worker without the extension renders the same frames.
Everything the group needs is inside the .blend: the atlas is packed, the constants are node
values. Nothing here imports the engine beyond the live volume's layout.
"""

from __future__ import annotations

import math
from typing import Any

import bpy

GROUP_PREFIX = "GID Live Motion"
ATLAS_PREFIX = "GID Live Motion Atlas"
TAG = "gid_live_motion"  # custom property on the group and the atlas: what they are, for whom
INPUTS = (  # name, default, min, max, tooltip
    ("Amplitude", 1.0, 0.0, 100.0, "Motion amplitude (1 = as predicted or extracted)"),
    ("Speed", 1.0, 0.0, 100.0, "Playback speed of the motion (0.5 = half speed, slow motion)"),
    ("Time Offset", 0.0, -1e6, 1e6, "Shift of the motion in time, in seconds"),
    ("Anchor Frame", 1.0, -1e6, 1e6, "The scene frame that shows the still itself"),
    ("Frame", 1.0, -1e9, 1e9, "The scene frame (driven by the expression 'frame')"),
    ("FPS", 24.0, 0.001, 1e4, "The scene frame rate (driven by the scene's frame rate)"),
)


def _socket(group: bpy.types.NodeTree, name: str, in_out: str, kind: str) -> Any:
    """A group socket on every supported Blender: ``interface`` since 4.0."""
    return group.interface.new_socket(name=name, in_out=in_out, socket_type=kind)


def pack_atlas(name: str, exr: bytes) -> bpy.types.Image:
    """The live volume's atlas (``LiveVolume.atlas()`` encoded as an OpenEXR file, half floats) as
    the image ``name``, packed into the .blend as those exact bytes: non-colour, channel-packed
    (alpha is data, never multiplied in), kept by a fake user."""
    old = bpy.data.images.get(name)
    if old is not None:
        bpy.data.images.remove(old)
    image = bpy.data.images.new(name, width=1, height=1, alpha=True, float_buffer=True, is_data=True)
    image.pack(data=exr, data_len=len(exr))
    image.source = "FILE"
    image.filepath_raw = f"//{name}.exr"  # never read: the packed bytes are the image
    image.colorspace_settings.name = "Non-Color"
    image.alpha_mode = "CHANNEL_PACKED"
    image.reload()
    image.use_fake_user = True
    image[TAG] = "atlas"
    return image


def build_group(name: str, atlas: bpy.types.Image, *, bins: int, width: int, height: int, period: int,
                clip_fps: float, pad: int) -> bpy.types.NodeTree:
    """The shader node group ``name`` evaluating ``bins`` tiles of ``atlas`` (each ``width`` x
    ``height`` plus ``pad`` repeated pixels a side) over a loop of ``period`` clip frames."""
    old = bpy.data.node_groups.get(name)
    if old is not None:
        bpy.data.node_groups.remove(old)
    g = bpy.data.node_groups.new(name, "ShaderNodeTree")
    g[TAG] = "group"
    _socket(g, "Vector", "INPUT", "NodeSocketVector")
    for label, default, lo, hi, tip in INPUTS:
        s = _socket(g, label, "INPUT", "NodeSocketFloat")
        s.default_value, s.min_value, s.max_value, s.description = default, lo, hi, tip
    _socket(g, "Vector", "OUTPUT", "NodeSocketVector")
    nodes, links = g.nodes, g.links
    gin = nodes.new("NodeGroupInput")
    gin.location = (-1400, 0)
    gout = nodes.new("NodeGroupOutput")
    gout.location = (1400, 0)

    def scalar(op: str, a: Any, b: Any = None, loc: tuple[float, float] = (0, 0)) -> Any:
        n = nodes.new("ShaderNodeMath")
        n.operation = op
        n.location = loc
        for i, v in enumerate((a, b)):
            if v is None:
                continue
            if isinstance(v, (int, float)):
                n.inputs[i].default_value = float(v)
            else:
                links.new(v, n.inputs[i])
        return n.outputs[0]

    def combine(x: Any, y: Any, loc: tuple[float, float]) -> Any:
        n = nodes.new("ShaderNodeCombineXYZ")
        n.location = loc
        for i, v in enumerate((x, y)):
            if isinstance(v, (int, float)):
                n.inputs[i].default_value = float(v)
            else:
                links.new(v, n.inputs[i])
        return n.outputs[0]

    def vmath(op: str, a: Any, b: Any, c: Any = None, loc: tuple[float, float] = (0, 0)) -> Any:
        n = nodes.new("ShaderNodeVectorMath")
        n.operation = op
        n.location = loc
        for i, v in enumerate((a, b, c)):
            if v is None:
                continue
            if isinstance(v, tuple):
                n.inputs[i].default_value = v
            else:
                links.new(v, n.inputs[i])
        return n.outputs["Value"] if op == "DOT_PRODUCT" else n.outputs["Vector"]

    # motion time as a fraction of the loop: ((frame - anchor) / fps * speed + offset) * clip_fps / period
    seconds = scalar("DIVIDE", scalar("SUBTRACT", gin.outputs["Frame"], gin.outputs["Anchor Frame"], loc=(-1200, 200)),
                   gin.outputs["FPS"], loc=(-1050, 200))
    moved = scalar("ADD", scalar("MULTIPLY", seconds, gin.outputs["Speed"], loc=(-900, 200)),
                 gin.outputs["Time Offset"], loc=(-750, 200))
    frac = scalar("FLOORED_MODULO", scalar("MULTIPLY", moved, clip_fps / period, loc=(-600, 200)), 1.0, loc=(-450, 200))
    aw, ah = bins * (width + 2 * pad), height + 2 * pad
    uv_scale = (width / aw, height / ah, 0.0)
    total = None
    for m in range(bins):
        y = -300.0 * m
        theta = scalar("MULTIPLY", frac, 2.0 * math.pi * m, loc=(-300, y))
        neg = scalar("MULTIPLY", frac, -2.0 * math.pi * m, loc=(-300, y - 60))
        rot = combine(scalar("COSINE", theta, loc=(-150, y)), scalar("SINE", neg, loc=(-150, y - 60)), (0, y))
        tile_uv = vmath("MULTIPLY_ADD", gin.outputs["Vector"], uv_scale,
                        ((m * (width + 2 * pad) + pad) / aw, pad / ah, 0.0), loc=(-300, y - 150))
        tex = nodes.new("ShaderNodeTexImage")
        tex.image, tex.interpolation, tex.extension = atlas, "Linear", "EXTEND"
        tex.location = (-100, y - 150)
        links.new(tile_uv, tex.inputs["Vector"])
        sep = nodes.new("ShaderNodeSeparateColor")
        sep.location = (150, y - 150)
        links.new(tex.outputs["Color"], sep.inputs["Color"])
        cx = combine(sep.outputs[0], sep.outputs[1], (300, y - 100))
        cy = combine(sep.outputs[2], tex.outputs["Alpha"], (300, y - 200))
        dx = vmath("DOT_PRODUCT", cx, rot, loc=(450, y - 100))
        d = combine(dx, vmath("DOT_PRODUCT", cy, rot, loc=(450, y - 200)), (600, y - 150))
        total = d if total is None else vmath("ADD", total, d, loc=(750, y - 150))
    # uv - amplitude * (bx / width, -by / height): x right = +u, y down = -v
    scale = combine(scalar("DIVIDE", gin.outputs["Amplitude"], -float(width), loc=(900, 300)),
                    scalar("DIVIDE", gin.outputs["Amplitude"], float(height), loc=(900, 200)), (1050, 250))
    out = vmath("MULTIPLY_ADD", total, scale, gin.outputs["Vector"], loc=(1200, 0))
    links.new(out, gout.inputs["Vector"])
    g["gid_bins"], g["gid_size"], g["gid_period"], g["gid_clip_fps"] = bins, [width, height], period, clip_fps
    return g


def drive_time(node: bpy.types.Node, scene: bpy.types.Scene) -> None:
    """Drive the group node's Frame input with ``frame`` and its FPS input with the scene's frame
    rate: simple expressions, evaluated without Python (no auto-run needed)."""
    frame = node.inputs["Frame"].driver_add("default_value").driver
    frame.type, frame.expression = "SCRIPTED", "frame"
    fps = node.inputs["FPS"].driver_add("default_value").driver
    fps.type = "SCRIPTED"
    for name, path in (("rate", "render.fps"), ("base", "render.fps_base")):
        var = fps.variables.new()
        var.name, var.type = name, "SINGLE_PROP"
        var.targets[0].id_type, var.targets[0].id, var.targets[0].data_path = "SCENE", scene, path
    fps.expression = "rate / base"
