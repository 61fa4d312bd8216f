"""Exact ground truth from a simulated scene (bpy-free): the 2D trajectory of the surface point
seen at every pixel of the first frame, and from it the spectral volume, the forward flow to any
frame and the renderer's softmax weights.

The pixel's surface point is fixed by what the camera ray through the pixel's centre hits at
frame 0 (a triangle and barycentric weights, from ``blender.py``'s ray casts). Its position at
frame ``t`` is the same barycentric mix of that triangle's vertices at ``t``, exactly as the
renderer interpolates them, projected through the camera. The spectral volume is then the
engine's own ``SpectralVolume.from_motion_texture`` of those trajectories.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...gid_engine.motion.spectral_volume import DEFAULT_K, SpectralVolume
from .scenes import Scene


@dataclass
class Projection:
    """A perspective camera: ``world_to_camera`` ``(4, 4)`` and the view frame's corners in camera
    space at depth ``depth`` (``x0 .. x1``, ``y0 .. y1``), for an image ``width x height``."""

    world_to_camera: np.ndarray
    x0: float
    x1: float
    y0: float
    y1: float
    depth: float
    width: int
    height: int

    def pixels(self, points: np.ndarray) -> np.ndarray:
        """Image coordinates ``(..., 2)`` (x right, y down, pixel centres at +0.5) of world points ``(..., 3)``."""
        m = self.world_to_camera
        c = points @ m[:3, :3].T + m[:3, 3]
        depth = np.maximum(-c[..., 2], 1e-9)  # points behind the camera never reach here: the rays hit in front
        u = (c[..., 0] * self.depth / depth - self.x0) / (self.x1 - self.x0)
        v = (c[..., 1] * self.depth / depth - self.y0) / (self.y1 - self.y0)
        return np.stack([u * self.width, (1.0 - v) * self.height], axis=-1)

    def rays(self) -> tuple[np.ndarray, np.ndarray]:
        """The camera's origin ``(3,)`` and unit world directions ``(H, W, 3)`` through every pixel centre."""
        inv = np.linalg.inv(self.world_to_camera)
        u = (np.arange(self.width) + 0.5) / self.width
        v = 1.0 - (np.arange(self.height) + 0.5) / self.height
        uu, vv = np.meshgrid(u, v)
        cam = np.stack([self.x0 + uu * (self.x1 - self.x0), self.y0 + vv * (self.y1 - self.y0),
                        np.full_like(uu, -self.depth)], axis=-1)
        d = cam @ inv[:3, :3].T
        return inv[:3, 3].copy(), d / np.linalg.norm(d, axis=-1, keepdims=True)


@dataclass
class Hits:
    """What each pixel of frame 0 sees: ``part`` index (-1: nothing), ``tri`` index in that part,
    barycentric weights ``bary`` ``(H, W, 3)``."""

    part: np.ndarray
    tri: np.ndarray
    bary: np.ndarray


def barycentric(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Barycentric weights ``(N, 3)`` of points ``p`` in triangles ``(a, b, c)`` (all ``(N, 3)``)."""
    v0, v1, v2 = b - a, c - a, p - a
    d00, d01, d11 = (v0 * v0).sum(1), (v0 * v1).sum(1), (v1 * v1).sum(1)
    d20, d21 = (v2 * v0).sum(1), (v2 * v1).sum(1)
    den = np.where(np.abs(d00 * d11 - d01 * d01) < 1e-30, 1e-30, d00 * d11 - d01 * d01)
    v = (d11 * d20 - d01 * d21) / den
    w = (d00 * d21 - d01 * d20) / den
    return np.stack([1.0 - v - w, v, w], axis=1)


def trajectories(scene: Scene, hits: Hits, cam: Projection) -> tuple[np.ndarray, np.ndarray]:
    """``(texture (T, 2, H, W) float32 px, moving (H, W) bool)``: every first-frame pixel's displacement
    at each frame of the window (0 where the pixel sees something static or nothing)."""
    h, w = hits.part.shape
    t = scene.num_frames
    texture = np.zeros((t, 2, h, w), np.float32)
    moving = np.zeros((h, w), bool)
    for pi, part in enumerate(scene.parts):
        if not part.moves:
            continue
        sel = np.nonzero(hits.part == pi)
        if len(sel[0]) == 0:
            continue
        corners = part.faces[hits.tri[sel]]  # (P, 3)
        bary = hits.bary[sel].astype(np.float64)  # (P, 3)
        used, inverse = np.unique(corners, return_inverse=True)
        modes = part.modes.take(used)
        rest = part.verts[used]
        start = cam.pixels((bary[:, :, None] * rest[inverse.reshape(-1, 3)]).sum(1))
        for t0 in range(0, t, 30):
            disp = modes.displacement(scene.q[:, t0:t0 + 30]).astype(np.float64)  # (t', U, 3)
            pos = rest[None] + disp
            pts = (bary[None, :, :, None] * pos[:, inverse.reshape(-1, 3)]).sum(2)  # (t', P, 3)
            d = cam.pixels(pts) - start[None]
            texture[t0:t0 + 30, 0][:, sel[0], sel[1]] = d[..., 0]
            texture[t0:t0 + 30, 1][:, sel[0], sel[1]] = d[..., 1]
        moving[sel] = True
    return texture, moving


def spectral_volume(scene: Scene, texture: np.ndarray, k: int = DEFAULT_K, **extra: object) -> SpectralVolume:
    """The ground-truth spectral volume of a trajectory texture (the engine's own transform)."""
    return SpectralVolume.from_motion_texture(texture, fps=scene.fps, k=k, source="simulated",
                                              extra={"kind": scene.kind, "seed": scene.seed, **extra})


def amplitude_px(texture: np.ndarray, moving: np.ndarray) -> float:
    """The 99th percentile, over moving pixels and frames, of the displacement's length (px)."""
    if not moving.any():
        return 0.0
    mag = np.hypot(texture[:, 0], texture[:, 1])[:, moving]
    return float(np.percentile(mag, 99))
