"""The scene in Blender (``bpy``): objects from ``scenes.Scene``'s numpy meshes, materials from
the licensed stills, sun and sky for the time of day, cameras, and Cycles renders of any frame.
Also the first frame's ray casts (``hits``) that fix which surface point each pixel sees.

One ``Stage`` per process holds the scene currently built; ``frame(t)`` moves every moving
mesh's vertices to their positions at frame ``t`` (the same arrays ``truth.py`` projects).
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import bpy
import numpy as np
from mathutils import Euler, Vector
from mathutils.bvhtree import BVHTree

from ...exporters.opencv import cv2
from ...gid_engine.repo_data import STILLS_DIR
from .scenes import Camera, Material, Scene
from .truth import Hits, Projection, barycentric


class Stage:
    """Builds scenes into an empty Blender file and renders them with Cycles on the CPU.

    ``samples``: path-tracing samples per pixel (the bundled OpenImageDenoise cleans the rest);
    ``width x height``: the image size the data is made at."""

    def __init__(self, width: int = 256, height: int = 160, samples: int = 16, threads: int = 1) -> None:
        bpy.ops.wm.read_factory_settings(use_empty=True)
        self.width, self.height = width, height
        sc = bpy.context.scene
        sc.render.engine = "CYCLES"
        sc.cycles.device = "CPU"
        sc.cycles.samples = samples
        sc.cycles.use_adaptive_sampling = True
        sc.cycles.use_denoising = True
        sc.cycles.denoiser = "OPENIMAGEDENOISE"
        sc.cycles.max_bounces = 4
        sc.cycles.seed = 0
        sc.render.resolution_x, sc.render.resolution_y = width, height
        sc.render.resolution_percentage = 100
        sc.render.threads_mode = "FIXED"
        sc.render.threads = threads
        sc.render.image_settings.file_format = "PNG"
        sc.render.image_settings.color_mode = "RGB"
        sc.view_settings.view_transform = "Standard"
        sc.render.film_transparent = False
        self.scene: Scene | None = None
        self.meshes: list[bpy.types.Mesh] = []
        self._tmp = Path(tempfile.mkdtemp(prefix="gid-simdata-"))

    # ------------------------------------------------------------------ building
    def build(self, scene: Scene) -> None:
        """Replace whatever was built with ``scene`` (rest pose)."""
        for collection in (bpy.data.objects, bpy.data.meshes, bpy.data.materials, bpy.data.lights,
                           bpy.data.cameras, bpy.data.worlds):
            for block in list(collection):
                collection.remove(block)
        for image in list(bpy.data.images):
            if image.users == 0:
                bpy.data.images.remove(image)
        sc = bpy.context.scene
        self.scene, self.meshes = scene, []
        for part in scene.parts:
            mesh = bpy.data.meshes.new(part.name)
            mesh.from_pydata(part.verts.tolist(), [], part.faces.tolist())
            uv = mesh.uv_layers.new(name="UVMap")
            loops = part.faces.reshape(-1)
            uv.data.foreach_set("uv", part.uv[loops].astype(np.float32).ravel())
            mesh.materials.append(self._material(part.name, part.material))
            for poly in mesh.polygons:
                poly.use_smooth = part.name in ("water", "flag", "flame", "branches")
            obj = bpy.data.objects.new(part.name, mesh)
            sc.collection.objects.link(obj)
            self.meshes.append(mesh)
        self._lights(scene)

    def _material(self, name: str, spec: Material) -> bpy.types.Material:
        mat = bpy.data.materials.new(name)
        mat.use_nodes = True
        nodes = mat.node_tree.nodes
        bsdf = nodes["Principled BSDF"]
        bsdf.inputs["Base Color"].default_value = (*spec.color, 1.0)
        bsdf.inputs["Roughness"].default_value = spec.roughness
        bsdf.inputs["Specular IOR Level"].default_value = spec.specular
        links = mat.node_tree.links
        uv = nodes.new("ShaderNodeUVMap")
        if spec.still:
            tex = nodes.new("ShaderNodeTexImage")
            tex.image = bpy.data.images.load(str(STILLS_DIR / spec.still), check_existing=True)
            tex.extension = "MIRROR"
            links.new(uv.outputs["UV"], tex.inputs["Vector"])
            links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
        elif not spec.emission:  # texture that sticks to the surface, so its motion is visible
            noise = nodes.new("ShaderNodeTexNoise")
            noise.inputs["Scale"].default_value = 12.0
            noise.inputs["Detail"].default_value = 6.0
            mix = nodes.new("ShaderNodeMix")
            mix.data_type = "RGBA"
            mix.blend_type = "MULTIPLY"
            mix.inputs["Factor"].default_value = 0.6
            mix.inputs["A"].default_value = (*spec.color, 1.0)
            links.new(uv.outputs["UV"], noise.inputs["Vector"])
            links.new(noise.outputs["Color"], mix.inputs["B"])
            links.new(mix.outputs["Result"], bsdf.inputs["Base Color"])
        if spec.emission:
            bsdf.inputs["Emission Color"].default_value = (*spec.color, 1.0)
            bsdf.inputs["Emission Strength"].default_value = spec.emission
        return mat

    def _lights(self, scene: Scene) -> None:
        sc, li = bpy.context.scene, scene.lighting
        world = bpy.data.worlds.new("sky")
        world.use_nodes = True
        bg = world.node_tree.nodes["Background"]
        bg.inputs["Color"].default_value = (*li.sky_color, 1.0)
        bg.inputs["Strength"].default_value = li.sky_strength
        sc.world = world
        sun = bpy.data.lights.new("sun", "SUN")
        sun.energy, sun.color, sun.angle = li.sun_strength, li.sun_color, math.radians(2.0)
        obj = bpy.data.objects.new("sun", sun)
        obj.rotation_euler = Euler((math.radians(90 - li.sun_elevation_deg), 0.0, math.radians(li.sun_azimuth_deg)))
        sc.collection.objects.link(obj)
        if li.point is not None:
            lamp = bpy.data.lights.new("flame", "POINT")
            lamp.energy, lamp.color, lamp.shadow_soft_size = li.point[3], (1.0, 0.6, 0.3), 0.01
            pobj = bpy.data.objects.new("flame_light", lamp)
            pobj.location = li.point[:3]
            sc.collection.objects.link(pobj)
        cam = bpy.data.cameras.new("camera")
        cam.sensor_fit, cam.sensor_width, cam.clip_start = "AUTO", 36.0, 0.01
        cobj = bpy.data.objects.new("camera", cam)
        sc.collection.objects.link(cobj)
        sc.camera = cobj

    def use_camera(self, camera: Camera) -> Projection:
        """Point the scene's camera; returns its projection for ``truth.py``."""
        sc = bpy.context.scene
        obj = sc.camera
        obj.data.lens = camera.lens_mm
        obj.location = camera.location
        direction = Vector(camera.target) - Vector(camera.location)
        quat = direction.to_track_quat("-Z", "Y")
        obj.rotation_euler = quat.to_euler()
        obj.rotation_euler.rotate_axis("Z", camera.roll)
        bpy.context.view_layer.update()
        frame = [np.array(v) for v in obj.data.view_frame(scene=sc)]
        xs, ys = [v[0] for v in frame], [v[1] for v in frame]
        return Projection(np.array(obj.matrix_world.inverted()), min(xs), max(xs), min(ys), max(ys),
                          float(-frame[0][2]), self.width, self.height)

    # ------------------------------------------------------------------ motion, rays, renders
    def frame(self, t: int | None, gain: float = 1.0) -> None:
        """Move every moving mesh to frame ``t`` of the window (rest pose when None), motion times ``gain``."""
        assert self.scene is not None
        for part, mesh in zip(self.scene.parts, self.meshes):
            if not part.moves:
                continue
            pos = part.verts if t is None else part.verts + gain * part.modes.displacement(self.scene.q[:, t])
            mesh.vertices.foreach_set("co", np.asarray(pos, np.float32).ravel())
            mesh.update()

    def hits(self, cam: Projection) -> Hits:
        """Ray-cast every pixel centre against the rest pose: which part, triangle and barycentric point it sees."""
        assert self.scene is not None
        verts, tris, owner, local = [], [], [], []
        base = 0
        for pi, part in enumerate(self.scene.parts):
            verts.append(part.verts)
            tris.append(part.faces + base)
            owner.append(np.full(len(part.faces), pi))
            local.append(np.arange(len(part.faces)))
            base += len(part.verts)
        v, f = np.concatenate(verts), np.concatenate(tris)
        tree = BVHTree.FromPolygons(v.tolist(), f.tolist(), all_triangles=True)
        owner_a, local_a = np.concatenate(owner), np.concatenate(local)
        origin, dirs = cam.rays()
        h, w = dirs.shape[:2]
        part = np.full((h, w), -1, np.int32)
        tri = np.zeros((h, w), np.int64)
        hit_pos = np.zeros((h, w, 3))
        o = Vector(origin)
        flat = dirs.reshape(-1, 3).tolist()
        for i, d in enumerate(flat):
            loc, _n, index, _dist = tree.ray_cast(o, Vector(d))
            if index is not None:
                y, x = divmod(i, w)
                part[y, x], tri[y, x], hit_pos[y, x] = owner_a[index], local_a[index], loc
        bary = np.zeros((h, w, 3))
        ok = part >= 0
        if ok.any():
            g = f[tri[ok] + _offsets(self.scene)[part[ok]]]
            bary[ok] = barycentric(hit_pos[ok], v[g[:, 0]], v[g[:, 1]], v[g[:, 2]])
        return Hits(part, tri, bary)

    def render(self, t: int | None = None, gain: float = 1.0) -> np.ndarray:
        """The image at frame ``t`` (rest when None): ``(H, W, 3)`` float32 sRGB in [0, 1]."""
        self.frame(t, gain)
        sc = bpy.context.scene
        path = self._tmp / "frame.png"
        sc.render.filepath = str(path)
        with _quiet():
            bpy.ops.render.render(write_still=True)
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        return np.ascontiguousarray(bgr[:, :, ::-1], dtype=np.float32) / 255.0


@contextmanager
def _quiet() -> Iterator[None]:
    """Cycles prints a line per render stage to the process's stdout: keep the data logs readable."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "wb") as null:
        os.dup2(null.fileno(), 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _offsets(scene: Scene) -> np.ndarray:
    """Each part's first triangle in the concatenated triangle list."""
    return np.cumsum([0] + [len(p.faces) for p in scene.parts[:-1]])
