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
from dataclasses import dataclass
from typing import Any, Optional

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


@dataclass(frozen=True)
class Layout:
    """Where the live volume's bins sit in its atlas and what one loop is (``LiveVolume``)."""

    bins: int
    width: int
    height: int
    period: int
    clip_fps: float
    pad: int


class _Builder:
    """Adds nodes and links to one node tree; the math nodes work in shader and geometry trees."""

    def __init__(self, tree: bpy.types.NodeTree) -> None:
        self.nodes, self.links = tree.nodes, tree.links

    def _wire(self, node: bpy.types.Node, values: tuple) -> None:
        for i, v in enumerate(values):
            if v is None:
                continue
            if isinstance(v, (int, float, tuple)):
                node.inputs[i].default_value = v
            else:
                self.links.new(v, node.inputs[i])

    def scalar(self, op: str, a: Any, b: Any = None, loc: tuple[float, float] = (0, 0)) -> Any:
        n = self.nodes.new("ShaderNodeMath")
        n.operation, n.location = op, loc
        self._wire(n, (a, b))
        return n.outputs[0]

    def combine(self, x: Any, y: Any, loc: tuple[float, float], z: Any = None) -> Any:
        n = self.nodes.new("ShaderNodeCombineXYZ")
        n.location = loc
        self._wire(n, (x, y, z))
        return n.outputs[0]

    def vector(self, op: str, a: Any, b: Any, c: Any = None, loc: tuple[float, float] = (0, 0)) -> Any:
        n = self.nodes.new("ShaderNodeVectorMath")
        n.operation, n.location = op, loc
        self._wire(n, (a, b, c))
        return n.outputs["Value"] if op == "DOT_PRODUCT" else n.outputs["Vector"]

    def loop_fraction(self, frame: Any, anchor: Any, fps: Any, speed: Any, offset: Any, layout: Layout) -> Any:
        """Motion time as a fraction of the loop: ``((frame - anchor) / fps * speed + offset) * clip_fps / period``."""
        seconds = self.scalar("DIVIDE", self.scalar("SUBTRACT", frame, anchor, loc=(-1200, 200)), fps, loc=(-1050, 200))
        moved = self.scalar("ADD", self.scalar("MULTIPLY", seconds, speed, loc=(-900, 200)), offset, loc=(-750, 200))
        cycles = self.scalar("MULTIPLY", moved, layout.clip_fps / layout.period, loc=(-600, 200))
        return self.scalar("FLOORED_MODULO", cycles, 1.0, loc=(-450, 200))

    def series(self, frac: Any, uv: Any, atlas: bpy.types.Image, layout: Layout, geometry: bool,
               rotations: Optional[list[Any]] = None) -> Any:
        """The field at ``uv`` as a vector (x right, y down, in pixels of the motion): ``sum_m`` of bin
        ``m``'s tile (Re x, Im x, Re y, Im y) sampled at ``uv`` and turned by ``phi = 2 pi m frac``
        (``Re(C e^{i phi})``), or by ``rotations[m]``, a vector socket (Re q, Im q, Re q) of the
        modal coordinate ``q`` (``Re(C q)``).

        Six nodes a bin: the tile's coordinates, the texture, ``(cos, sin, cos)`` of ``phi`` as one
        vector sine of ``(phi + pi/2, phi, phi + pi/2)``, and two multiply-adds that accumulate
        ``sum (R cos, G sin, B cos)`` (the colour, a vector) and ``sum A (cos, sin, cos)``; the field
        is ``(x0 - x1, x2 - a1)`` of those two sums, taken once."""
        w, h, pad = layout.width, layout.height, layout.pad
        aw, ah = layout.bins * (w + 2 * pad), h + 2 * pad
        color_sum = alpha_sum = None
        for m in range(layout.bins):
            y = -250.0 * m
            if rotations is not None:
                rot: Any = rotations[m]
            elif m == 0:
                rot = (1.0, 0.0, 1.0)
            else:
                phase = self.vector("MULTIPLY_ADD", frac, (2.0 * math.pi * m,) * 3, (math.pi / 2, 0.0, math.pi / 2),
                                    loc=(-300, y))
                rot = self.vector("SINE", phase, None, loc=(-150, y))
            corner = ((m * (w + 2 * pad) + pad) / aw, pad / ah, 0.0)
            tile_uv = self.vector("MULTIPLY_ADD", uv, (w / aw, h / ah, 0.0), corner, loc=(-300, y - 120))
            color, alpha = self._sample(atlas, tile_uv, geometry, (0, y - 120))
            color_sum = self.vector("MULTIPLY_ADD", color, rot, color_sum or (0.0, 0.0, 0.0), loc=(300, y))
            alpha_sum = self.vector("MULTIPLY_ADD", rot, alpha, alpha_sum or (0.0, 0.0, 0.0), loc=(300, y - 120))
        cs, als = self.nodes.new("ShaderNodeSeparateXYZ"), self.nodes.new("ShaderNodeSeparateXYZ")
        cs.location, als.location = (500, 0), (500, -150)
        self.links.new(color_sum, cs.inputs[0])
        self.links.new(alpha_sum, als.inputs[0])
        return self.combine(self.scalar("SUBTRACT", cs.outputs[0], cs.outputs[1], loc=(650, 0)),
                            self.scalar("SUBTRACT", cs.outputs[2], als.outputs[1], loc=(650, -150)), (800, -50))

    def _sample(self, atlas: bpy.types.Image, uv: Any, geometry: bool, loc: tuple[float, float]) -> tuple[Any, Any]:
        if geometry:
            tex = self.nodes.new("GeometryNodeImageTexture")
            tex.inputs["Image"].default_value = atlas
        else:
            tex = self.nodes.new("ShaderNodeTexImage")
            tex.image = atlas
        tex.interpolation, tex.extension, tex.location = "Linear", "EXTEND", loc
        self.links.new(uv, tex.inputs["Vector"])
        return tex.outputs["Color"], tex.outputs["Alpha"]


def _new_group(name: str, kind: str, layout: Layout) -> bpy.types.NodeTree:
    old = bpy.data.node_groups.get(name)
    if old is not None:
        bpy.data.node_groups.remove(old)
    g = bpy.data.node_groups.new(name, kind)
    g[TAG] = "group"
    g["gid_bins"], g["gid_size"], g["gid_period"], g["gid_clip_fps"] = (layout.bins, [layout.width, layout.height],
                                                                        layout.period, layout.clip_fps)
    return g


def _time_inputs(g: bpy.types.NodeTree, skip: tuple[str, ...] = ()) -> None:
    for label, default, lo, hi, tip in INPUTS:
        if label in skip:
            continue
        s = _socket(g, label, "INPUT", "NodeSocketFloat")
        s.default_value, s.min_value, s.max_value, s.description = default, lo, hi, tip


def build_group(name: str, atlas: bpy.types.Image, layout: Layout) -> bpy.types.NodeTree:
    """The shader node group ``name``: texture coordinates in, coordinates warped backward by the
    series of ``atlas`` out (``uv - amplitude * b / size``), for an Image Texture node."""
    g = _new_group(name, "ShaderNodeTree", layout)
    _socket(g, "Vector", "INPUT", "NodeSocketVector")
    _time_inputs(g)
    _socket(g, "Vector", "OUTPUT", "NodeSocketVector")
    b = _Builder(g)
    gin, gout = b.nodes.new("NodeGroupInput"), b.nodes.new("NodeGroupOutput")
    gin.location, gout.location = (-1400, 0), (1400, 0)
    i = gin.outputs
    frac = b.loop_fraction(i["Frame"], i["Anchor Frame"], i["FPS"], i["Speed"], i["Time Offset"], layout)
    total = b.series(frac, i["Vector"], atlas, layout, geometry=False)
    # x right is +u, y down is -v
    scale = b.combine(b.scalar("DIVIDE", i["Amplitude"], -float(layout.width), loc=(900, 300)),
                      b.scalar("DIVIDE", i["Amplitude"], float(layout.height), loc=(900, 200)), (1050, 250))
    b.links.new(b.vector("MULTIPLY_ADD", total, scale, i["Vector"], loc=(1200, 0)), gout.inputs["Vector"])
    return g


def build_modal_group(name: str, atlas: bpy.types.Image, layout: Layout) -> bpy.types.NodeTree:
    """The interactive-dynamics shader group ``name``: texture coordinates in, coordinates warped by
    ``sum_j Re(U_j q_j)`` out, each mode ``U_j`` a tile of ``atlas`` and ``q_j`` the inputs
    "q{j} Re" and "q{j} Im", which ``write_modal_keys`` keys to the simulation on every frame."""
    g = _new_group(name, "ShaderNodeTree", layout)
    g[TAG] = "dynamics"
    _socket(g, "Vector", "INPUT", "NodeSocketVector")
    amp = _socket(g, "Amplitude", "INPUT", "NodeSocketFloat")
    amp.default_value, amp.min_value, amp.max_value = 1.0, 0.0, 100.0
    for j in range(layout.bins):
        for part in ("Re", "Im"):
            _socket(g, f"q{j} {part}", "INPUT", "NodeSocketFloat").description = f"Modal coordinate {j}, {part} part"
    _socket(g, "Vector", "OUTPUT", "NodeSocketVector")
    b = _Builder(g)
    gin, gout = b.nodes.new("NodeGroupInput"), b.nodes.new("NodeGroupOutput")
    gin.location, gout.location = (-1400, 0), (1400, 0)
    i = gin.outputs
    rotations = [b.combine(i[f"q{j} Re"], i[f"q{j} Im"], (-150, -250.0 * j), i[f"q{j} Re"])
                 for j in range(layout.bins)]
    total = b.series(None, i["Vector"], atlas, layout, geometry=False, rotations=rotations)
    scale = b.combine(b.scalar("DIVIDE", i["Amplitude"], -float(layout.width), loc=(900, 300)),
                      b.scalar("DIVIDE", i["Amplitude"], float(layout.height), loc=(900, 200)), (1050, 250))
    b.links.new(b.vector("MULTIPLY_ADD", total, scale, i["Vector"], loc=(1200, 0)), gout.inputs["Vector"])
    return g


def write_modal_keys(node: bpy.types.Node, frames: list[int], q: Any) -> None:
    """Key the group node's "q{j} Re/Im" inputs to the modal coordinates ``q`` ``(F, J)`` at ``frames``
    (linear between frames), replacing the keys they had."""
    tree = node.id_data
    for j in range(q.shape[1]):
        for part, values in (("Re", q[:, j].real), ("Im", q[:, j].imag)):
            socket = node.inputs[f"q{j} {part}"]
            path = socket.path_from_id("default_value")
            anim = tree.animation_data or tree.animation_data_create()
            curve = next((c for c in _curves(anim) if c.data_path == path), None)
            if curve is None:
                socket.keyframe_insert("default_value", frame=frames[0] if frames else 0)
                curve = next(c for c in _curves(anim) if c.data_path == path)
            curve.keyframe_points.clear()
            curve.keyframe_points.add(len(frames))
            co = [v for pair in zip(frames, values) for v in (float(pair[0]), float(pair[1]))]
            curve.keyframe_points.foreach_set("co", co)
            curve.keyframe_points.foreach_set("interpolation", [_LINEAR] * len(frames))
            curve.update()


_LINEAR = 1  # the enum value of 'LINEAR' in keyframe interpolation (CONSTANT 0, LINEAR 1, BEZIER 2)


def _curves(anim: Any) -> Any:
    """The F-curves of an animation data block: its action's (slotted actions in 4.4+ keep them in
    a channelbag; ``action.fcurves`` before)."""
    action = anim.action
    if action is None:
        return []
    fcurves = getattr(action, "fcurves", None)
    if fcurves is not None:
        return fcurves
    slot = anim.action_slot
    for layer in action.layers:
        for strip in layer.strips:
            bag = strip.channelbag(slot)
            if bag is not None:
                return bag.fcurves
    return []


def build_geometry_group(name: str, atlas: bpy.types.Image, layout: Layout) -> bpy.types.NodeTree:
    """The geometry node group ``name``: moves each point of a mesh by the forward series of
    ``atlas`` sampled at its UV (``uv_map``), ``Size`` being the object-space size the UV square
    covers; time is the scene's own (the Scene Time node), so only the FPS input needs a driver."""
    g = _new_group(name, "GeometryNodeTree", layout)
    g[TAG] = "geometry"
    _socket(g, "Geometry", "INPUT", "NodeSocketGeometry")
    _time_inputs(g, skip=("Frame",))
    size = _socket(g, "Size", "INPUT", "NodeSocketVector")
    size.default_value = (2.0, 2.0, 0.0)
    uv_name = _socket(g, "UV Map", "INPUT", "NodeSocketString")
    uv_name.default_value = "UVMap"
    _socket(g, "Geometry", "OUTPUT", "NodeSocketGeometry")
    b = _Builder(g)
    gin, gout = b.nodes.new("NodeGroupInput"), b.nodes.new("NodeGroupOutput")
    gin.location, gout.location = (-1400, 0), (1600, 0)
    i = gin.outputs
    time = b.nodes.new("GeometryNodeInputSceneTime")
    time.location = (-1400, 300)
    uv = b.nodes.new("GeometryNodeInputNamedAttribute")
    uv.data_type, uv.location = "FLOAT_VECTOR", (-1400, -300)
    b.links.new(i["UV Map"], uv.inputs["Name"])
    frac = b.loop_fraction(time.outputs["Frame"], i["Anchor Frame"], i["FPS"], i["Speed"], i["Time Offset"], layout)
    total = b.series(frac, uv.outputs["Attribute"], atlas, layout, geometry=True)
    # pixels of the motion -> object space: x right is +x, y down is -y
    sep = b.nodes.new("ShaderNodeSeparateXYZ")
    sep.location = (900, 300)
    b.links.new(i["Size"], sep.inputs[0])
    sx = b.scalar("MULTIPLY", b.scalar("DIVIDE", sep.outputs[0], float(layout.width), loc=(1000, 350)),
                  i["Amplitude"], loc=(1100, 350))
    sy = b.scalar("MULTIPLY", b.scalar("DIVIDE", sep.outputs[1], -float(layout.height), loc=(1000, 250)),
                  i["Amplitude"], loc=(1100, 250))
    offset = b.vector("MULTIPLY", total, b.combine(sx, sy, (1200, 300)), loc=(1300, 0))
    move = b.nodes.new("GeometryNodeSetPosition")
    move.location = (1450, 0)
    b.links.new(i["Geometry"], move.inputs["Geometry"])
    b.links.new(offset, move.inputs["Offset"])
    b.links.new(move.outputs["Geometry"], gout.inputs["Geometry"])
    return g


def drive_time(node: bpy.types.Node, scene: bpy.types.Scene) -> None:
    """Drive the group node's Frame input with ``frame`` and its FPS input with the scene's frame
    rate: simple expressions, evaluated without Python (no auto-run needed)."""
    frame = node.inputs["Frame"].driver_add("default_value").driver
    frame.type, frame.expression = "SCRIPTED", "frame"
    _fps_driver(node.inputs["FPS"].driver_add("default_value").driver, scene)


def _modifier_slot(mod: bpy.types.Modifier, name: str) -> tuple[Any, str]:
    """Where a Geometry Nodes modifier keeps its value of group input ``name``: the struct and the
    property (``properties.inputs.<id>.value`` in Blender 5.2+, the ID property ``["<id>"]`` before)."""
    ident = next(item.identifier for item in mod.node_group.interface.items_tree
                 if item.item_type == "SOCKET" and item.in_out == "INPUT" and item.name == name)
    props = getattr(mod, "properties", None)
    if props is not None:
        return getattr(props.inputs, ident), "value"
    return mod, f'["{ident}"]'


def modifier_input(mod: bpy.types.Modifier, name: str) -> Any:
    """The modifier's value of its group's input ``name`` (a float, a string or a 3-tuple)."""
    owner, prop = _modifier_slot(mod, name)
    value = owner.path_resolve(prop)
    return tuple(value) if hasattr(value, "__len__") and not isinstance(value, str) else value


def set_modifier_input(mod: bpy.types.Modifier, name: str, value: Any) -> None:
    """Set the modifier's value of its group's input ``name``."""
    owner, prop = _modifier_slot(mod, name)
    if prop.startswith("["):
        owner[prop[2:-2]] = value
    else:
        setattr(owner, prop, value)


def drive_modifier_fps(obj: bpy.types.Object, mod: bpy.types.Modifier, scene: bpy.types.Scene) -> None:
    """Drive the modifier's FPS input with the scene's frame rate (the simple expression
    ``rate / base``, evaluated without Python); time itself is the group's Scene Time node."""
    owner, prop = _modifier_slot(mod, "FPS")
    driver = owner.driver_add(prop).driver
    _fps_driver(driver, scene)


def _fps_driver(driver: Any, scene: bpy.types.Scene) -> None:
    driver.type = "SCRIPTED"
    for name, path in (("rate", "render.fps"), ("base", "render.fps_base")):
        var = driver.variables.new()
        var.name, var.type = name, "SINGLE_PROP"
        var.targets[0].id_type, var.targets[0].id, var.targets[0].data_path = "SCENE", scene, path
    driver.expression = "rate / base"
