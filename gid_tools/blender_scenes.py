"""Scenes built with ``bpy`` alone, shared by the tests, the Blender bench and tools scripts.

Nothing here imports ``gid``: the bench imports this module normally, while a test run against
the installed extension and a script run by a bare Blender of another version (where ``gid`` is not
importable) load it by its file path (``importlib.util.spec_from_file_location``). ``gid_tools``
is not shipped in the extension.
"""

from __future__ import annotations

import bpy


def camera_filling_plane(width: int, height: int, *, samples: int = 1, fps: int = 30, exact: bool = True,
                         material: str = "still") -> tuple[bpy.types.Scene, bpy.types.NodeTree, bpy.types.Node]:
    """A new empty file holding a ``width x height`` Cycles (CPU) scene whose orthographic camera
    sees exactly a plane with UVs; the plane's material emits what its Image Texture node shows
    (no image yet), so a render is the texture itself. ``exact``: one sample per pixel at its
    centre (tiny pixel filter), no look, the Standard view transform, as the engine samples.
    Returns the scene, the material's node tree and the Image Texture node."""
    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
    scene = bpy.context.scene
    r = scene.render
    r.engine, r.resolution_x, r.resolution_y, r.resolution_percentage, r.fps = "CYCLES", width, height, 100, fps
    scene.cycles.device, scene.cycles.samples, scene.cycles.use_denoising = "CPU", samples, False
    if exact:
        r.filter_size = 0.01
        scene.view_settings.view_transform, scene.view_settings.look = "Standard", "None"
    aspect = width / height
    mesh = bpy.data.meshes.new("plane")
    mesh.from_pydata([(-aspect, -1, 0), (aspect, -1, 0), (aspect, 1, 0), (-aspect, 1, 0)], [], [(0, 1, 2, 3)])
    for loop, co in zip(mesh.uv_layers.new().data, [(0, 0), (1, 0), (1, 1), (0, 1)]):
        loop.uv = co
    plane = bpy.data.objects.new("plane", mesh)
    scene.collection.objects.link(plane)
    cam = bpy.data.objects.new("cam", bpy.data.cameras.new("cam"))
    cam.data.type, cam.data.ortho_scale, cam.location = "ORTHO", 2 * aspect, (0, 0, 5)
    scene.collection.objects.link(cam)
    scene.camera = cam
    mat = bpy.data.materials.new(material)
    mat.use_nodes = True
    tree = mat.node_tree
    tree.nodes.clear()
    tex = tree.nodes.new("ShaderNodeTexImage")
    tex.interpolation = "Linear"
    emit, out = tree.nodes.new("ShaderNodeEmission"), tree.nodes.new("ShaderNodeOutputMaterial")
    tree.links.new(tex.outputs["Color"], emit.inputs["Color"])
    tree.links.new(emit.outputs[0], out.inputs["Surface"])
    mesh.materials.append(mat)
    return scene, tree, tex
