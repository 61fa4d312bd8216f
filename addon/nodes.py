"""Blender-side building blocks: image sequences, texture nodes and compositor setups for gid output.

The operators call these after the engine has written a frame sequence (``frame_0001.png`` ...) or
Displace-node maps (``disp_node_0001.exr`` + ``disp_node.json``). Everything here adds *new*
datablocks and nodes and never edits or deletes the user's: a new image datablock per load (Blender
uniquifies the name with ``.001``), a new texture node beside the user's, and a node frame labelled
"GID" in the compositor. The one change to a user's node is the link into the compositor output
(4.x Composite / 5.0 Group Output): ours replaces it, and the previous source is recorded on the
tree (``tree["gid_previous_output"]``) so :func:`remove_compositor_setup` can put it back.

Blender versions (4.2 LTS - 5.3), feature-detected, never by version number:

* 4.x: the compositor tree is ``scene.node_tree`` after ``scene.use_nodes = True``; the output is a
  Composite node; the Displace node has inputs Image, Vector, X Scale, Y Scale and samples its
  image at ``p - vector * scale`` (pixels, y up).
* 5.0: the tree is an ID, ``bpy.data.node_groups.new(name, "CompositorNodeTree")`` assigned to
  ``scene.compositing_node_group``, and the output is the first socket of a Group Output node.
  The Displace node has inputs Image, Displacement, Interpolation, Extension X/Y and no scales,
  so the vector is scaled by a Vector Math node (``SCALE``) before it.
* 5.3: compositing is a stack of effects (``scene.compositor_effects``), each with a node group;
  the tree is the active effect's (``compositing_node_group`` still answers, deprecated).

What a headless, compositor-only render needs (checked with bpy 4.5.4 and 5.0.1): no camera, no
objects, any engine (the 3D scene is never rendered when the tree has no unmuted Render Layers
node, see :func:`tree_renders_scene`); ``scene.render.use_compositing = True`` (the default);
``scene.render.use_sequencer = False`` only if the scene has strips (they would replace the
compositor's result); resolution = image size at 100 %, because the output canvas is the render
size and the image is centred in it; view transform 'Standard' for pixel-exact output (the default
AgX/Filmic would tone-map the frames). Each 64x48 frame then renders in about a millisecond.

Only this package imports bpy; engine code is reached through relative imports.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import bpy

GID_ROLE = "gid_role"  # custom property on every node we create: how we find (only) our own nodes
PREVIOUS_OUTPUT = "gid_previous_output"  # tree property: what fed the output before we linked ours
FRAME_LABEL = "GID"
TREE_NAME = "GID Compositing"

COLOR_SRGB = "sRGB"
COLOR_LINEAR = "Linear Rec.709"
COLOR_DATA = "Non-Color"
# Names the same colour spaces have had in Blender's OCIO configs; the first one present wins.
_COLORSPACE_ALIASES: dict[str, tuple[str, ...]] = {
    COLOR_SRGB: ("sRGB", "sRGB 2.1"),
    COLOR_LINEAR: ("Linear Rec.709", "Linear", "scene_linear"),
    COLOR_DATA: ("Non-Color", "Raw", "Generic Data", "data"),
}

NODE_GAP = 60.0  # space between our nodes and the user's, in node-editor units
_EST_HEIGHT = 280.0  # node height when the UI has not drawn it (dimensions are 0 in background)


# --------------------------------------------------------------------------------------- images


def colorspace_name(wanted: str) -> str:
    """The name this Blender's OCIO config uses for ``wanted`` (an alias may differ by version)."""
    prop = bpy.types.ColorManagedInputColorspaceSettings.bl_rna.properties["name"]
    available = {item.identifier for item in prop.enum_items}
    for candidate in (wanted, *_COLORSPACE_ALIASES.get(wanted, ())):
        if candidate in available:
            return candidate
    raise ValueError(f"colour space {wanted!r} is not in this Blender's configuration")


def default_colorspace(filepath: str) -> str:
    """PNG/JPEG frames hold sRGB values, EXR frames scene-linear values (the exporters' convention)."""
    return COLOR_LINEAR if filepath.lower().endswith(".exr") else COLOR_SRGB


def _stored_path(filepath: str, relative: bool) -> str:
    """Relative (``//...``) to the saved .blend when asked, so a moved project keeps its frames."""
    path = os.path.abspath(bpy.path.abspath(filepath))
    if relative and bpy.data.filepath:
        try:
            return bpy.path.relpath(path)
        except ValueError:  # another drive on Windows: no relative path exists
            return path
    return path


def load_image_sequence(first_frame_path: str, count: int, name: str, *, colorspace: str | None = None,
                        relative: bool = True) -> bpy.types.Image:
    """A new image datablock reading ``prefix_0001.ext`` ... as a sequence.

    Always a new datablock (``check_existing=False``): an image of the user's with the same file or
    name is left alone, and ours gets Blender's unique name (``name.001``). ``colorspace`` defaults
    by extension (PNG sRGB, EXR linear); pass :data:`COLOR_DATA` for displacement maps so no colour
    transform touches the vectors. ``count`` is checked against the files that exist, because a
    missing frame would show as pink in Blender rather than fail.
    """
    if count < 1:
        raise ValueError(f"frame count must be positive, got {count}")
    path = os.path.abspath(bpy.path.abspath(first_frame_path))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"first frame {path} does not exist")
    image = bpy.data.images.load(path, check_existing=False)
    image.name = name  # a taken name makes Blender rename *ours* to name.001, never the other one
    image.source = "SEQUENCE"
    image.colorspace_settings.name = colorspace_name(colorspace or default_colorspace(path))
    stored = _stored_path(path, relative)
    if stored != image.filepath:
        image.filepath = stored
    return image


def configure_image_user(image_user: Any, count: int, start: int = 1, cyclic: bool = True) -> Any:
    """Play frames 1..count of a sequence from scene frame ``start``, looping when ``cyclic``.

    Works on a ``bpy.types.ImageUser`` (texture nodes) and on a compositor Image node, which carry
    the same properties. ``use_auto_refresh`` makes the viewport follow the scene frame.
    """
    image_user.frame_duration = count
    image_user.frame_start = start
    image_user.frame_offset = 0
    image_user.use_cyclic = cyclic
    image_user.use_auto_refresh = True
    return image_user


# ------------------------------------------------------------------------------- node placement


def _abs_location(node: bpy.types.Node) -> tuple[float, float]:
    """Location in tree space (4.4+ exposes it; earlier, frame children are parent-relative)."""
    loc = getattr(node, "location_absolute", None)
    if loc is None:
        loc = node.location
        parent = node.parent
        while parent is not None:
            loc = (loc[0] + parent.location[0], loc[1] + parent.location[1])
            parent = parent.parent
    return float(loc[0]), float(loc[1])


def _rect(node: bpy.types.Node) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) of a node; its drawn size when known, an estimate otherwise."""
    x, y = _abs_location(node)
    w = node.dimensions[0] or node.width
    h = node.dimensions[1] or _EST_HEIGHT
    return x, y, x + w, y - h


def _overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[3] < b[1] and b[3] < a[1]


def free_location(nodes: Iterable[bpy.types.Node], x: float, y: float, width: float,
                  height: float = _EST_HEIGHT) -> tuple[float, float]:
    """First spot at or below (x, y) where a width x height node overlaps none of ``nodes``.

    Frames are ignored: their size comes from their children, which are checked themselves.
    """
    rects = [_rect(n) for n in nodes if n.bl_idname != "NodeFrame"]
    while True:
        mine = (x, y, x + width, y - height)
        hit = [r for r in rects if _overlaps(mine, (r[0] - NODE_GAP / 2, r[1] + NODE_GAP / 2,
                                                    r[2] + NODE_GAP / 2, r[3] - NODE_GAP / 2))]
        if not hit:
            return x, y
        y = min(r[3] for r in hit) - NODE_GAP


def _new_node(tree: bpy.types.NodeTree, idname: str, role: str, label: str = "") -> bpy.types.Node:
    """A node tagged as ours, so later setups replace only our own nodes."""
    node = tree.nodes.new(idname)
    node[GID_ROLE] = role
    if label:
        node.label = label
    return node


def is_gid_node(node: bpy.types.Node) -> bool:
    return GID_ROLE in node.keys()


# ----------------------------------------------------------------------------- shader textures


def configure_users(image: bpy.types.Image, count: int, start: int = 1, cyclic: bool = True) -> None:
    """Every texture or compositor Image node already showing ``image`` plays ``count`` frames from ``start``.

    After a re-bake the sequence datablock is reused, so nodes the user placed keep working and
    only their frame range needs updating.
    """
    trees = [m.node_tree for m in bpy.data.materials if m.node_tree is not None]
    trees += list(bpy.data.node_groups)  # includes 5.0 compositor trees
    trees += [s.node_tree for s in bpy.data.scenes if getattr(s, "node_tree", None) is not None]  # 4.x
    for tree in trees:
        for node in tree.nodes:
            if getattr(node, "image", None) == image:
                configure_image_user(node.image_user if hasattr(node, "image_user") else node, count,
                                     start=start, cyclic=cyclic)


def add_sequence_texture_node(node_tree: bpy.types.NodeTree, image: bpy.types.Image, count: int,
                              beside: bpy.types.Node | None = None, label: str = "GID loop",
                              start: int = 1) -> bpy.types.ShaderNodeTexImage:
    """A new Image Texture node playing ``image`` as a loop, placed by ``beside`` without overlap.

    It is only added: the user's node keeps its image, links and place, so they choose what to
    connect (and undo stays trivial). Placed below ``beside`` (same column), or left of all nodes.
    """
    node = _new_node(node_tree, "ShaderNodeTexImage", "loop_texture", label)
    node.image = image
    configure_image_user(node.image_user, count, start=start)
    others = [n for n in node_tree.nodes if n != node]
    if beside is not None:
        x, y = _abs_location(beside)[0], _rect(beside)[3] - NODE_GAP
    elif others:
        x = min(_rect(n)[0] for n in others) - node.width - NODE_GAP
        y = max(_rect(n)[1] for n in others)
    else:
        x = y = 0.0
    node.location = free_location(others, x, y, node.width)
    return node


# ---------------------------------------------------------------------------------- compositor


def _scene_has(name: str) -> bool:
    """Whether this Blender's Scene has the RNA property ``name`` (read from RNA, so a deprecated
    property is detected without the DeprecationWarning reading it would raise)."""
    return name in bpy.types.Scene.bl_rna.properties


def _group_compositor(scene: bpy.types.Scene) -> bpy.types.NodeTree | None:
    """5.0+: the scene's compositor node group (5.3+: the active compositor effect's)."""
    if _scene_has("compositor_effects"):
        effect = scene.compositor_effects.active
        return effect.node_group if effect is not None else None
    return scene.compositing_node_group


def _set_group_compositor(scene: bpy.types.Scene, tree: bpy.types.NodeTree) -> None:
    """Make ``tree`` the scene's compositor: 5.0 - 5.2 assign it to the scene, 5.3+ to the active
    compositor effect (a new one, enabled for render, when the scene has none)."""
    if _scene_has("compositor_effects"):
        effects = scene.compositor_effects
        effect = effects.active if effects.active is not None else effects.new(name=TREE_NAME)
        effect.node_group = tree
    else:
        scene.compositing_node_group = tree


def compositor_tree(scene: bpy.types.Scene, create: bool = True) -> bpy.types.NodeTree | None:
    """The scene's compositor node tree, created (and switched on) if missing and ``create``.

    A tree Blender creates for us (4.x default Render Layers -> Composite, Viewer) is emptied:
    it holds nothing of the user's, and its Render Layers node would make every compositor-only
    render also render the 3D scene. An existing tree is returned untouched.
    """
    if _scene_has("compositor_effects") or _scene_has("compositing_node_group"):
        tree = _group_compositor(scene)
        if tree is None and create:
            tree = bpy.data.node_groups.new(TREE_NAME, "CompositorNodeTree")
            _group_output_socket(tree)
            _set_group_compositor(scene, tree)
    else:
        tree = scene.node_tree
        if create:
            fresh = tree is None
            scene.use_nodes = True
            tree = scene.node_tree
            if fresh:
                for node in list(tree.nodes):
                    tree.nodes.remove(node)
    if tree is not None and create:
        scene.render.use_compositing = True
    return tree


def tree_renders_scene(tree: bpy.types.NodeTree) -> bool:
    """Whether rendering this compositor also renders the 3D scene (an unmuted Render Layers node).

    Blender renders the scene for any such node, linked or not; operators can warn about the cost.
    """
    return any(n.bl_idname == "CompositorNodeRLayers" and not n.mute for n in tree.nodes)


def _group_output_socket(tree: bpy.types.NodeTree) -> bpy.types.NodeSocket:
    """5.0: the compositor's result is the first input of the active Group Output node."""
    if not any(item.item_type == "SOCKET" and item.in_out == "OUTPUT" for item in tree.interface.items_tree):
        tree.interface.new_socket(name="Image", in_out="OUTPUT", socket_type="NodeSocketColor")
    outputs = [n for n in tree.nodes if n.bl_idname == "NodeGroupOutput"]
    node = next((n for n in outputs if n.is_active_output), outputs[0] if outputs else None)
    if node is None:
        node = _new_node(tree, "NodeGroupOutput", "output")
        node.location = free_location(tree.nodes, 400.0, 0.0, node.width)
    return node.inputs[0]


def output_socket(tree: bpy.types.NodeTree) -> bpy.types.NodeSocket:
    """The socket whose input is the compositor's result: 4.x Composite, 5.0 Group Output."""
    if not hasattr(bpy.types, "CompositorNodeComposite"):
        return _group_output_socket(tree)
    composites = [n for n in tree.nodes if n.bl_idname == "CompositorNodeComposite" and not n.mute]
    node = composites[0] if composites else None
    if node is None:
        node = _new_node(tree, "CompositorNodeComposite", "output")
        node.location = free_location(tree.nodes, 400.0, 0.0, node.width)
    return node.inputs["Image"]


def _remember_previous_output(tree: bpy.types.NodeTree, socket: bpy.types.NodeSocket) -> None:
    """Record the user's link into the output so removing our setup can restore it.

    A link from a user node is always recorded (it is the user's latest choice); when ours feeds
    the output (a repeated setup) or nothing does, an earlier record is kept.
    """
    link = socket.links[0] if socket.is_linked else None
    if link is not None and not is_gid_node(link.from_node):
        tree[PREVIOUS_OUTPUT] = {"node": link.from_node.name, "socket": link.from_socket.identifier}
    elif PREVIOUS_OUTPUT not in tree.keys():
        tree[PREVIOUS_OUTPUT] = {"node": "", "socket": ""}


def _remove_gid_nodes(tree: bpy.types.NodeTree) -> None:
    """Remove our chain from an earlier setup; an output node we had to add stays (others use it)."""
    for node in [n for n in tree.nodes if is_gid_node(n) and n[GID_ROLE] != "output"]:
        tree.nodes.remove(node)


def remove_compositor_setup(scene: bpy.types.Scene) -> bool:
    """Delete our compositor nodes and relink the user's previous output source, if recorded."""
    tree = compositor_tree(scene, create=False)
    if tree is None or PREVIOUS_OUTPUT not in tree.keys():
        return False
    previous = dict(tree[PREVIOUS_OUTPUT])
    _remove_gid_nodes(tree)
    source = tree.nodes.get(previous.get("node", ""))
    if source is not None:
        socket = next((s for s in source.outputs if s.identifier == previous["socket"]), None)
        if socket is not None:
            tree.links.new(socket, output_socket(tree))
    del tree[PREVIOUS_OUTPUT]
    return True


def _start_chain(scene: bpy.types.Scene) -> tuple[bpy.types.NodeTree, bpy.types.NodeSocket, bpy.types.NodeFrame]:
    """Tree, output socket and a fresh "GID" frame; replaces a previous GID setup, not user nodes."""
    tree = compositor_tree(scene)
    out = output_socket(tree)
    _remember_previous_output(tree, out)
    _remove_gid_nodes(tree)
    frame = _new_node(tree, "NodeFrame", "frame", FRAME_LABEL)
    return tree, out, frame


def _place_chain(tree: bpy.types.NodeTree, frame: bpy.types.NodeFrame, out: bpy.types.NodeSocket,
                 columns: list[list[bpy.types.Node]]) -> None:
    """Lay our nodes out in columns left of the output node, below any user node in the way."""
    ox, oy = _abs_location(out.node)
    ours = {n for col in columns for n in col} | {frame, out.node}
    others = [n for n in tree.nodes if n not in ours]
    width = sum(max(n.width for n in col) + NODE_GAP for col in columns)
    height = max(len(col) for col in columns) * (_EST_HEIGHT + NODE_GAP)
    x0, y0 = free_location(others, ox - width - NODE_GAP, oy, width, height)
    x = x0
    for col in columns:
        y = y0
        for node in col:
            node.location = (x, y)
            node.parent = frame
            y -= _EST_HEIGHT + NODE_GAP
        x += max(n.width for n in col) + NODE_GAP


def _add_viewer(tree: bpy.types.NodeTree, socket: bpy.types.NodeSocket) -> None:
    """Show our result in the backdrop, but only with a Viewer of our own (never relink the user's)."""
    if any(n.bl_idname == "CompositorNodeViewer" for n in tree.nodes):
        return
    viewer = _new_node(tree, "CompositorNodeViewer", "viewer", "GID viewer")
    viewer.location = free_location(tree.nodes, _abs_location(socket.node)[0] + 300.0,
                                    _abs_location(socket.node)[1] - 200.0, viewer.width)
    tree.links.new(socket, viewer.inputs[0])


def _sequence_image_node(tree: bpy.types.NodeTree, image: bpy.types.Image, count: int, start: int,
                         role: str, label: str) -> bpy.types.Node:
    node = _new_node(tree, "CompositorNodeImage", role, label)
    node.image = image
    configure_image_user(node, count, start=start)
    return node


def _set_range(scene: bpy.types.Scene, count: int, start: int) -> None:
    scene.frame_start = start
    scene.frame_end = start + count - 1


def setup_compositor_loop(scene: bpy.types.Scene, seq_image: bpy.types.Image, count: int, *,
                          start: int = 1, set_range: bool = False) -> bpy.types.NodeTree:
    """Image node (the frame sequence, looping) -> compositor output, in a "GID" frame.

    No Render Layers node is added, so a render costs only the image load, not a 3D render.
    ``set_range`` sets the scene's frame range to exactly one loop.
    """
    tree, out, frame = _start_chain(scene)
    image_node = _sequence_image_node(tree, seq_image, count, start, "loop_image", "GID loop")
    tree.links.new(image_node.outputs["Image"], out)
    _place_chain(tree, frame, out, [[image_node]])
    _add_viewer(tree, image_node.outputs["Image"])
    if set_range:
        _set_range(scene, count, start)
    return tree


def setup_compositor_displace(scene: bpy.types.Scene, still_image: bpy.types.Image,
                              disp_node_seq: bpy.types.Image, count: int, scale: float, *,
                              start: int = 1, set_range: bool = False) -> bpy.types.NodeTree:
    """Still -> Displace (vectors from the ``disp_node`` sequence, times ``scale``) -> output.

    ``scale`` is ``params.scale`` from ``disp_node.json``: the maps hold backward vectors divided by
    it (y up), which is what the Displace node expects. 4.x takes the scale as the node's X/Y
    Scale; 5.0 has no such inputs, so a Vector Math ``SCALE`` node multiplies the vectors first.
    """
    if not scale > 0:
        raise ValueError(f"displacement scale must be positive, got {scale!r}")
    if disp_node_seq.colorspace_settings.name != colorspace_name(COLOR_DATA):
        raise ValueError(f"displacement image {disp_node_seq.name!r} must be Non-Color data")
    tree, out, frame = _start_chain(scene)
    still = _new_node(tree, "CompositorNodeImage", "still_image", "GID still")
    still.image = still_image
    vectors = _sequence_image_node(tree, disp_node_seq, count, start, "displacement_image", "GID displacement")
    displace = _new_node(tree, "CompositorNodeDisplace", "displace", "GID displace")
    tree.links.new(still.outputs["Image"], displace.inputs["Image"])
    if "X Scale" in displace.inputs:  # 4.x
        tree.links.new(vectors.outputs["Image"], displace.inputs["Vector"])
        displace.inputs["X Scale"].default_value = scale
        displace.inputs["Y Scale"].default_value = scale
        columns = [[still, vectors], [displace]]
    else:  # 5.0: Displacement input, no scale inputs
        multiply = _new_node(tree, "ShaderNodeVectorMath", "displacement_scale", "GID scale")
        multiply.operation = "SCALE"
        multiply.inputs["Scale"].default_value = scale
        tree.links.new(vectors.outputs["Image"], multiply.inputs[0])
        tree.links.new(multiply.outputs["Vector"], displace.inputs["Displacement"])
        columns = [[still, vectors], [multiply], [displace]]
    tree.links.new(displace.outputs["Image"], out)
    _place_chain(tree, frame, out, columns)
    _add_viewer(tree, displace.outputs["Image"])
    if set_range:
        _set_range(scene, count, start)
    return tree


def match_render_size(scene: bpy.types.Scene, image: bpy.types.Image) -> None:
    """Render at the image's size: the compositor canvas is the render size, images are centred."""
    width, height = image.size[:]
    if width and height:
        scene.render.resolution_x = width
        scene.render.resolution_y = height
        scene.render.resolution_percentage = 100
