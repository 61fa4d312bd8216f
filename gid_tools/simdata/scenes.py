"""Procedural scenes for simulated training data: geometry, materials, motion, lights and cameras
as plain numpy (bpy-free), so the motion that moves the rendered geometry is also the exact
ground truth (``truth.py``), and the same seed always gives the same scene.

A scene is a subject (a tree, a grass field, a flag, a water surface, a candle flame or, by name
only, a stream between banks) in front of a static background (a licensed still on a distant plane,
ground, rocks, sky), lit for a time of day, with several cameras. Every moving part carries
``VertexModes`` over the scene's modal coordinates ``q`` (``motion.py``): wind-driven damped
oscillators whose natural frequencies come from each member's length and thickness.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ...gid_engine.motion.spectral_volume import DEFAULT_FPS, DEFAULT_FRAMES
from .motion import (ModeBank, VertexModes, cantilever_frequency, cantilever_shape, delayed, frequencies,
                     oscillator_response, wind_spectrum)

KINDS = ("tree", "grass", "flag", "water", "candle")  # the drawn mix (``build_scene`` with no kind)
# Kinds made only when asked for by name: adding one to the draw would change every drawn scene's seeds
ALL_KINDS = KINDS + ("stream",)
UP = np.array([0.0, 0.0, 1.0])


@dataclass
class Material:
    """What a part looks like. ``still``: the name of a licensed still mapped through the part's
    UVs (None: plain ``color``); ``emission``: strength of a glow in ``color`` (flames)."""

    color: tuple[float, float, float] = (0.5, 0.5, 0.5)
    still: str | None = None
    roughness: float = 0.7
    emission: float = 0.0
    specular: float = 0.3


@dataclass
class Part:
    """One mesh: rest vertices ``(N, 3)`` metres (world), triangles ``(F, 3)``, per-vertex UVs ``(N, 2)``."""

    name: str
    verts: np.ndarray
    faces: np.ndarray
    uv: np.ndarray
    material: Material
    modes: VertexModes

    @property
    def moves(self) -> bool:
        return bool(self.modes.idx.shape[1]) and bool(np.abs(self.modes.w).max() > 0)


@dataclass
class Camera:
    location: tuple[float, float, float]
    target: tuple[float, float, float]
    lens_mm: float
    roll: float = 0.0


@dataclass
class Lighting:
    sun_elevation_deg: float
    sun_azimuth_deg: float
    sun_color: tuple[float, float, float]
    sun_strength: float
    sky_color: tuple[float, float, float]
    sky_strength: float
    point: tuple[float, float, float, float] | None = None  # x, y, z, watts (candle light)


@dataclass
class Scene:
    """A built scene: parts, modal coordinates ``q`` ``(M, T)``, lighting, cameras, provenance."""

    kind: str
    seed: int
    parts: list[Part]
    q: np.ndarray
    lighting: Lighting
    cameras: list[Camera]
    fps: float = DEFAULT_FPS
    num_frames: int = DEFAULT_FRAMES
    info: dict[str, Any] = field(default_factory=dict)

    def positions(self, part: Part, frame: int | None) -> np.ndarray:
        """``part``'s vertices at ``frame`` (rest when None)."""
        if frame is None or not part.moves:
            return part.verts.astype(np.float32)
        return (part.verts + part.modes.displacement(self.q[:, frame])).astype(np.float32)

    def scaled(self, gain: float) -> "Scene":
        """The same scene with every motion ``gain`` times larger (the modes are linear)."""
        return Scene(self.kind, self.seed, self.parts, self.q * gain, self.lighting, self.cameras, self.fps,
                     self.num_frames, dict(self.info, gain=float(self.info.get("gain", 1.0)) * gain))


# ----------------------------------------------------------------------------- geometry helpers
def _frame(axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors perpendicular to ``axis`` and to each other."""
    a = axis / np.linalg.norm(axis)
    ref = UP if abs(a[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    e1 = np.cross(a, ref)
    e1 /= np.linalg.norm(e1)
    return e1, np.cross(a, e1)


def _tube(p0: np.ndarray, axis: np.ndarray, length: float, r0: float, r1: float, segments: int, sides: int,
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A tapered tube: ``(verts, faces, uv, s)`` with ``s`` each vertex's relative arclength."""
    a = axis / np.linalg.norm(axis)
    e1, e2 = _frame(a)
    s = np.repeat(np.linspace(0.0, 1.0, segments + 1), sides)
    ang = np.tile(np.arange(sides) * 2 * np.pi / sides, segments + 1)
    r = r0 + (r1 - r0) * s
    verts = p0 + length * s[:, None] * a + r[:, None] * (np.cos(ang)[:, None] * e1 + np.sin(ang)[:, None] * e2)
    faces = []
    for i in range(segments):
        for j in range(sides):
            a0, a1 = i * sides + j, i * sides + (j + 1) % sides
            b0, b1 = a0 + sides, a1 + sides
            faces += [(a0, a1, b1), (a0, b1, b0)]
    uv = np.stack([ang / (2 * np.pi) * 0.25, s * length * 0.25], axis=1)
    return verts, np.array(faces, np.int32), uv, s


def _grid(nx: int, ny: int) -> tuple[np.ndarray, np.ndarray]:
    """``(uv (nx*ny, 2) in [0, 1], triangles)`` of a regular grid."""
    u, v = np.meshgrid(np.linspace(0, 1, nx), np.linspace(0, 1, ny))
    uv = np.stack([u.ravel(), v.ravel()], axis=1)
    faces = []
    for j in range(ny - 1):
        for i in range(nx - 1):
            a, b, c, d = j * nx + i, j * nx + i + 1, (j + 1) * nx + i + 1, (j + 1) * nx + i
            faces += [(a, b, c), (a, c, d)]
    return uv, np.array(faces, np.int32)


def _blob(rng: np.random.Generator, centre: np.ndarray, radius: float, rough: float = 0.25, n: int = 8
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A lumpy sphere (a rock, a bush): UV-sphere vertices pushed by a smooth random radius."""
    lat = np.linspace(0, np.pi, n + 1)
    lon = np.linspace(0, 2 * np.pi, 2 * n, endpoint=False)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    dirs = np.stack([np.sin(la) * np.cos(lo), np.sin(la) * np.sin(lo), np.cos(la)], -1).reshape(-1, 3)
    bumps = sum(rng.normal(0, rough / (i + 1)) * np.cos((i + 1) * la.ravel() + rng.uniform(0, 6))
                * np.cos((i + 1) * lo.ravel() + rng.uniform(0, 6)) for i in range(3))
    verts = centre + radius * (1 + bumps)[:, None] * dirs * np.array([1, 1, 0.6])
    faces = []
    m = 2 * n
    for i in range(n):
        for j in range(m):
            a, b = i * m + j, i * m + (j + 1) % m
            c, d = a + m, b + m
            faces += [(a, b, d), (a, d, c)]
    uv = np.stack([lo.ravel() / (2 * np.pi), la.ravel() / np.pi], 1)
    return verts, np.array(faces, np.int32), uv


def _static(name: str, verts: np.ndarray, faces: np.ndarray, uv: np.ndarray, material: Material) -> Part:
    return Part(name, np.asarray(verts, np.float64), faces, np.asarray(uv, np.float32), material,
                VertexModes.static(len(verts)))


# ----------------------------------------------------------------------------- wind
class Wind:
    """One window of wind over the scene: a mean direction, a shared gusty spectrum that travels
    downstream at ``speed`` m/s, and independent turbulence per member (``share`` of it)."""

    def __init__(self, rng: np.random.Generator, bank: ModeBank, strength: float) -> None:
        self.rng, self.bank = rng, bank
        az = rng.uniform(0, 2 * np.pi)
        self.direction = np.array([math.cos(az), math.sin(az), 0.0])
        self.speed = float(rng.uniform(2.0, 8.0))
        self.spectrum = wind_spectrum(rng, bank.num_frames, bank.fps)
        self.strength = strength
        self.turbulence = float(rng.uniform(0.3, 0.8))

    def force(self, point: np.ndarray, along: np.ndarray) -> np.ndarray:
        """The force spectrum on a member at ``point`` bending along unit ``along``."""
        n, fps = self.bank.num_frames, self.bank.fps
        shared = delayed(self.spectrum, float(point @ self.direction) / self.speed, n, fps)
        own = wind_spectrum(self.rng, n, fps, gusts=0)
        return self.strength * (float(along @ self.direction) * shared + self.turbulence * own)

    def mode(self, point: np.ndarray, along: np.ndarray, f0: float, zeta: float) -> int:
        """A new oscillator driven here; returns its row in the bank."""
        return self.bank.add(oscillator_response(self.force(point, along), f0, zeta, self.bank.num_frames,
                                                 self.bank.fps))

    def carrier(self, f0: float, zeta: float) -> tuple[int, int]:
        """A narrow-band wave driver: the rows of ``x(t)`` and its quarter-period shift (Hilbert pair)."""
        n, fps = self.bank.num_frames, self.bank.fps
        spec = wind_spectrum(self.rng, n, fps, gusts=0)
        f = frequencies(n, fps)
        r = f / f0
        spec = spec / (1.0 - r ** 2 + 2j * zeta * r)
        return self.bank.add(np.fft.irfft(spec, n=n)), self.bank.add(np.fft.irfft(-1j * spec, n=n))


# ----------------------------------------------------------------------------- subjects
@dataclass
class _Member:
    """A branch's motion entries for a point on it: (row, direction) pairs of every ancestor."""

    entries: list[tuple[int, np.ndarray]]


def _tree(rng: np.random.Generator, bank: ModeBank, wind: Wind, leaf_still: str | None, bark_still: str | None,
          origin: np.ndarray, leaf_density: float = 1.0) -> list[Part]:
    """A branching tree: tapered tubes (each branch bends in two directions as a cantilever, and
    carries its children, which also swing with its slope), leaves as textured cards that flutter
    (25-45 per twig, times ``leaf_density``)."""
    height = rng.uniform(3.0, 7.0)
    stiff = rng.uniform(0.04, 0.1)
    depth = int(rng.integers(4, 5))
    verts, faces, uvs, idxs, ws = [], [], [], [], []
    lverts, lfaces, luvs, lidx, lw = [], [], [], [], []
    count = [0, 0]

    def entries_at(ancestors: list[tuple[int, np.ndarray, np.ndarray, float, float, np.ndarray]],
                   x: np.ndarray) -> list[tuple[int, np.ndarray]]:
        out = []
        for row, e, axis, length, s_attach, attach in ancestors:
            slope = (cantilever_shape(min(s_attach + 1e-3, 1.0)) - cantilever_shape(max(s_attach - 1e-3, 0.0))) / 2e-3
            n = np.cross(axis, e)
            out.append((row, cantilever_shape(s_attach) * e + slope / length * np.cross(n, x - attach)))
        return out

    def branch(p0: np.ndarray, axis: np.ndarray, length: float, radius: float, level: int,
               ancestors: list) -> None:
        axis = axis / np.linalg.norm(axis)
        segs = max(2, 5 - level)
        v, f, uv, s = _tube(p0, axis, length, radius, radius * 0.55, segs, 6 if level < 2 else 4)
        f0 = cantilever_frequency(length, radius, stiff)
        zeta = rng.uniform(0.05, 0.2)
        e1, e2 = _frame(axis)
        mid = p0 + axis * length * 0.7
        own = []
        for e in (e1, e2):
            amp = length * (0.015 + 0.02 * level)
            row = wind.mode(mid, e, f0, zeta)
            bank.rows[row] *= amp
            own.append((row, e))
        base = sum(len(x) for x in verts)
        for i in range(len(v)):
            ent = entries_at(ancestors, v[i]) + [(row, cantilever_shape(s[i]) * e) for row, e in own]
            idxs.append([r for r, _ in ent])
            ws.append([w for _, w in ent])
        verts.append(v)
        faces.append(f + base)
        uvs.append(uv + rng.random(2))
        count[0] += 1
        if level + 1 >= depth:
            _leaves(p0, axis, length, ancestors, own)
            return
        children = int(rng.integers(3, 5)) if level else int(rng.integers(3, 6))
        for c in range(children):
            s_at = rng.uniform(0.45, 0.95) if level else rng.uniform(0.55, 0.9)
            at = p0 + axis * length * s_at
            tilt = rng.uniform(0.5, 1.1)
            az = 2 * np.pi * (c + rng.random() * 0.5) / children
            d = axis * math.cos(tilt) + math.sin(tilt) * (math.cos(az) * e1 + math.sin(az) * e2)
            d = d + UP * rng.uniform(0.0, 0.4)
            sub = ancestors + [(row, e, axis, length, s_at, at) for row, e in own]
            branch(at, d, length * rng.uniform(0.5, 0.75), radius * rng.uniform(0.45, 0.65), level + 1, sub)

    def _leaves(p0: np.ndarray, axis: np.ndarray, length: float, ancestors: list, own: list) -> None:
        n_leaves = max(1, int(round(int(rng.integers(25, 45)) * leaf_density)))
        size = rng.uniform(0.12, 0.25) * height / 5
        for _ in range(n_leaves):
            s_at = rng.uniform(0.2, 1.0)
            at = p0 + axis * length * s_at
            out = rng.normal(size=3)
            out -= axis * (out @ axis)
            out /= np.linalg.norm(out) + 1e-9
            side = np.cross(out, axis)
            side /= np.linalg.norm(side) + 1e-9
            quad = np.array([at, at + out * size * 0.5 + side * size * 0.3, at + out * size,
                             at + out * size * 0.5 - side * size * 0.3])
            quad += rng.normal(0, size * 0.1, (4, 3))
            flutter = wind.mode(at, side, rng.uniform(2.0, 6.0), rng.uniform(0.05, 0.15))
            bank.rows[flutter] *= rng.uniform(0.15, 0.4)  # radians
            sub = ancestors + [(row, e, axis, length, s_at, at) for row, e in own]
            base = count[1]
            for x in quad:
                ent = entries_at(sub, x) + [(flutter, np.cross(out, x - at))]
                lidx.append([r for r, _ in ent])
                lw.append([w for _, w in ent])
            lverts.append(quad)
            lfaces.append(np.array([[0, 1, 2], [0, 2, 3]]) + base)
            c = rng.random(2) * 0.85
            luvs.append(np.array([c, c + [0.1, 0.05], c + [0.15, 0.15], c + [0.05, 0.1]]))
            count[1] += 4

    trunk_r = height * rng.uniform(0.025, 0.04)
    lean = UP + rng.normal(0, 0.08, 3) * np.array([1, 1, 0])
    branch(origin, lean, height * rng.uniform(0.45, 0.6), trunk_r, 0, [])

    def pack(idx: list, w: list) -> VertexModes:
        j = max(len(x) for x in idx)
        ia = np.zeros((len(idx), j), np.int32)
        wa = np.zeros((len(idx), j, 3), np.float32)
        for i, (r, ww) in enumerate(zip(idx, w)):
            ia[i, :len(r)] = r
            wa[i, :len(r)] = ww
        return VertexModes(ia, wa)

    bark = Material(tuple(rng.uniform([0.15, 0.1, 0.06], [0.35, 0.25, 0.15])), bark_still, 0.9)
    leaf = Material(tuple(rng.uniform([0.05, 0.2, 0.03], [0.3, 0.5, 0.15])), leaf_still, 0.6, specular=0.4)
    return [Part("branches", np.concatenate(verts), np.concatenate(faces), np.concatenate(uvs).astype(np.float32),
                 bark, pack(idxs, ws)),
            Part("leaves", np.concatenate(lverts), np.concatenate(lfaces), np.concatenate(luvs).astype(np.float32),
                 leaf, pack(lidx, lw))]


def _grass(rng: np.random.Generator, bank: ModeBank, wind: Wind, still: str | None, centre: np.ndarray
           ) -> list[Part]:
    """A patch of grass blades: thin tapered strips, each a cantilever in the travelling wind."""
    n = int(rng.integers(2500, 4000))
    size = rng.uniform(1.5, 3.0)
    tall = rng.uniform(0.25, 0.7)
    verts, faces, uvs, idx, w = [], [], [], [], []
    segs = 4
    for b in range(n):
        base = centre + np.array([rng.uniform(-size, size), rng.uniform(-size / 2, size), 0.0])
        h = tall * rng.uniform(0.6, 1.3)
        lean = np.array([*rng.normal(0, 0.25, 2), 1.0])
        lean /= np.linalg.norm(lean)
        width = rng.uniform(0.012, 0.03) * tall / 0.4
        az = rng.uniform(0, np.pi)
        side = np.array([math.cos(az), math.sin(az), 0.0])
        e1, e2 = _frame(lean)
        f0 = float(np.clip(cantilever_frequency(h, width * 0.15, 0.05), 0.6, 4.0))
        rows = [wind.mode(base, e, f0, rng.uniform(0.08, 0.25)) for e in (e1, e2)]
        for r in rows:
            bank.rows[r] *= h * 0.08
        first = b * (segs + 1) * 2
        for i in range(segs + 1):
            s = i / segs
            p = base + lean * h * s + UP * (-0.15 * h * s * s)
            half = width * (1 - s) * 0.5 + 1e-4
            for sign in (-1, 1):
                verts.append(p + sign * half * side)
                rng.random()  # an unused draw per vertex: part of every seed's stream
                uvs.append([(b % 37) / 37 + sign * 0.002, s * 0.2])
                shape = cantilever_shape(s)
                idx.append(rows)
                w.append([shape * e1, shape * e2])
            if i:
                a = first + 2 * (i - 1)
                faces += [(a, a + 1, a + 3), (a, a + 3, a + 2)]
    mat = Material(tuple(rng.uniform([0.08, 0.25, 0.03], [0.35, 0.55, 0.15])), still, 0.6)
    return [Part("grass", np.array(verts), np.array(faces, np.int32), np.array(uvs, np.float32), mat,
                 VertexModes(np.array(idx, np.int32), np.array(w, np.float32)))]


def _flag(rng: np.random.Generator, bank: ModeBank, wind: Wind, still: str | None, origin: np.ndarray
          ) -> list[Part]:
    """A flag on a pole: travelling bending waves whose amplitude grows from the pole to the free
    edge, driven by narrow-band gusts (each harmonic a Hilbert pair of coordinates)."""
    length = rng.uniform(1.2, 2.5)
    height = length * rng.uniform(0.55, 0.75)
    pole_h = rng.uniform(2.5, 4.5)
    nx, ny = 28, 18
    uv, faces = _grid(nx, ny)
    along = wind.direction
    normal = np.cross(UP, along)
    top = origin + UP * pole_h
    verts = top + uv[:, 0:1] * length * along - uv[:, 1:2] * height * UP
    speed = rng.uniform(2.0, 5.0)  # wave speed along the flag, m/s
    idx, w = [], []
    rows, weights = [], []
    for h in range(3):
        f = rng.uniform(0.8, 2.8)
        c, s = wind.carrier(f, rng.uniform(0.05, 0.15))
        amp = length * rng.uniform(0.03, 0.08) / (h + 1)
        k = 2 * np.pi * f / speed
        x = uv[:, 0] * length
        grow = uv[:, 0] ** rng.uniform(0.8, 1.5)
        rows += [c, s]
        weights += [amp * grow * np.cos(k * x), amp * grow * np.sin(k * x)]
    idx = np.tile(np.array(rows, np.int32), (len(verts), 1))
    w = np.stack(weights, axis=1)[:, :, None] * normal[None, None, :]
    flag = Part("flag", verts, faces, uv.astype(np.float32),
                Material(tuple(rng.random(3)), still, 0.8), VertexModes(idx, w.astype(np.float32)))
    pv, pf, puv, _ = _tube(origin, UP, pole_h + 0.1, 0.03, 0.025, 2, 8)
    return [flag, _static("pole", pv, pf, puv, Material((0.6, 0.6, 0.62), None, 0.3))]


def _water(rng: np.random.Generator, bank: ModeBank, wind: Wind, still: str | None, centre: np.ndarray
           ) -> list[Part]:
    """A water surface moved by deep-water gravity waves (Gerstner: orbits, ``omega^2 = g k``) from a
    wind-sea spectrum around the wind's direction."""
    size = rng.uniform(14.0, 24.0)
    nx = 110
    uv, faces = _grid(nx, nx)
    verts = centre + np.stack([(uv[:, 0] - 0.5) * size, (uv[:, 1] - 0.5) * size, np.zeros(len(uv))], 1)
    rows, weights = [], []
    peak = rng.uniform(0.5, 1.0)
    for _ in range(14):
        f = float(np.clip(peak * rng.lognormal(0, 0.3), 0.3, 2.0))
        k = (2 * np.pi * f) ** 2 / 9.81
        ang = math.atan2(wind.direction[1], wind.direction[0]) + rng.normal(0, 0.6)
        d = np.array([math.cos(ang), math.sin(ang), 0.0])
        amp = 0.04 * (f / peak) ** -2.5 * rng.uniform(0.5, 1.0) / 14 ** 0.5
        phase = k * ((verts - centre) @ d)
        c, s = wind.carrier(f, 0.05)
        rows += [c, s]
        weights += [amp * (np.cos(phase)[:, None] * UP - np.sin(phase)[:, None] * d),
                    amp * (np.sin(phase)[:, None] * UP + np.cos(phase)[:, None] * d)]
    idx = np.tile(np.array(rows, np.int32), (len(verts), 1))
    w = np.stack(weights, axis=1)
    mat = Material(tuple(rng.uniform([0.05, 0.12, 0.15], [0.2, 0.3, 0.35])), still, 0.15, specular=0.5)
    return [Part("water", verts, faces, (uv * 4).astype(np.float32), mat, VertexModes(idx, w.astype(np.float32)))]


def _stream(rng: np.random.Generator, bank: ModeBank, wind: Wind, still: str | None, centre: np.ndarray
            ) -> list[Part]:
    """A stream: a channel of running water between two static banks, with rocks in and beside it.

    The surface carries ripples that travel downstream on the current: deep-water capillary-gravity
    waves Doppler-shifted by the current ``U`` (``2 pi f = sqrt(g k) + U k``, so each frequency in the
    window's band has its wavenumber), moving surface points on Gerstner orbits, strongest mid-channel
    (the current's profile, zero at the banks) and in the turbulent wake behind each rock, where a
    stationary wave adds to them: its crests stand behind the rock (phase speed equal to the current,
    ``k = g / U^2``) and its amplitude fluctuates. Rows are normalised, so the relative sizes of the
    ripples and the stationary waves are the ones drawn here (a few centimetres at most)."""
    width = rng.uniform(1.0, 3.0)
    length = rng.uniform(10.0, 16.0)
    angle = (0.0 if rng.random() < 0.5 else np.pi) + rng.normal(0, 0.25)
    if rng.random() < 0.3:  # the stream runs towards or away from the camera instead of across the view
        angle += np.pi / 2
    down = np.array([math.cos(angle), math.sin(angle), 0.0])
    across = np.cross(UP, down)
    current = rng.uniform(0.3, 1.2)  # m/s
    nx, ny = 160, 28
    uv, faces = _grid(nx, ny)
    along, side = (uv[:, 0] - 0.5) * length, (uv[:, 1] - 0.5) * width
    verts = centre + along[:, None] * down + side[:, None] * across
    rocks_in = [(rng.uniform(-0.35, 0.35) * length, rng.uniform(-0.3, 0.3) * width, rng.uniform(0.1, 0.3))
                for _ in range(int(rng.integers(2, 6)))]
    profile = np.clip(1.0 - (2.0 * side / width) ** 2, 0.0, 1.0)  # the current: zero at the banks
    wake = np.zeros(len(verts))
    for x0, y0, r in rocks_in:
        behind = np.clip(along - x0, 0.0, None)
        spread = r + 0.15 * behind
        wake += (along > x0 - r) * np.exp(-behind / (6 * r)) * np.exp(-((side - y0) / spread) ** 2)
    envelope = profile * (0.35 + 1.2 * np.clip(wake, 0.0, 1.5))
    rows, weights = [], []

    def carrier_pair(f: float, zeta: float) -> tuple[int, int]:
        c, s = wind.carrier(f, zeta)
        rms = float(np.sqrt(np.mean(bank.rows[c] ** 2))) or 1.0
        bank.rows[c] /= rms
        bank.rows[s] /= rms
        return c, s

    ripples = 12
    for _ in range(ripples):  # ripples on the current
        f = float(rng.uniform(0.6, 3.0))
        root = (-math.sqrt(9.81) + math.sqrt(9.81 + 4 * current * 2 * np.pi * f)) / (2 * current)
        k = root * root
        ang = rng.normal(0, 0.35)
        d = math.cos(ang) * down + math.sin(ang) * across
        # steepness a k below 0.4 (ripples, not breakers), the sum a few centimetres
        amp = rng.uniform(0.3, 1.0) * min(0.4 / k, 0.03) / math.sqrt(ripples)
        phase = k * ((verts - centre) @ d) + rng.uniform(0, 2 * np.pi)
        c, s = carrier_pair(f, 0.05)
        rows += [c, s]
        weights += [amp * envelope[:, None] * (np.cos(phase)[:, None] * UP - np.sin(phase)[:, None] * d),
                    amp * envelope[:, None] * (np.sin(phase)[:, None] * UP + np.cos(phase)[:, None] * d)]
    for x0, y0, r in rocks_in:  # a standing wave behind each rock
        f = float(rng.uniform(0.8, 2.5))  # how fast its amplitude fluctuates
        k = float(np.clip(9.81 / current ** 2, 2 * np.pi / 1.0, 2 * np.pi / 0.1))
        near = np.exp(-((along - x0 - 3 * r) / (4 * r)) ** 2 - ((side - y0) / (2 * r)) ** 2) * profile
        c, _ = carrier_pair(f, 0.1)
        rows.append(c)
        weights.append(min(0.5 / k, 0.03) * near[:, None] * (np.cos(k * (along - x0))[:, None] * UP
                                                  + 0.5 * np.sin(k * (along - x0))[:, None] * down))
    idx = np.tile(np.array(rows, np.int32), (len(verts), 1))
    w = np.stack(weights, axis=1)
    mat = Material(tuple(rng.uniform([0.08, 0.12, 0.1], [0.3, 0.35, 0.3])), still, 0.1, specular=0.6)
    parts = [Part("water", verts, faces, (uv * np.array([length, width]) / 2).astype(np.float32), mat,
                  VertexModes(idx, w.astype(np.float32)))]
    bank_colour = tuple(rng.uniform([0.2, 0.18, 0.1], [0.45, 0.4, 0.25]))
    bu, bf = _grid(40, 8)
    for sign in (-1.0, 1.0):  # banks rising from the water's edge
        wide = rng.uniform(2.0, 4.0)
        out = width / 2 - 0.05 + bu[:, 1] * wide
        rise = rng.uniform(0.15, 0.6) * np.sqrt(bu[:, 1])
        bverts = (centre + ((bu[:, 0] - 0.5) * length)[:, None] * down + sign * out[:, None] * across
                  + (rise - 0.03)[:, None] * UP)
        parts.append(_static(f"bank{int(sign > 0)}", bverts, bf, bu * np.array([length, wide]) / 2,
                             Material(bank_colour, still if rng.random() < 0.5 else None, 0.95)))
    for i, (x0, y0, r) in enumerate(rocks_in):
        v, f, u = _blob(rng, centre + x0 * down + y0 * across + UP * rng.uniform(-0.3, 0.1) * r, r)
        parts.append(_static(f"rock_in{i}", v, f, u, Material(tuple(rng.uniform(0.25, 0.5, 3)), None, 0.8)))
    return parts


def _candle(rng: np.random.Generator, bank: ModeBank, wind: Wind, still: str | None, origin: np.ndarray
            ) -> list[Part]:
    """A candle: a static wax cylinder and a glowing teardrop flame that sways (two pendulum-like
    modes, largest at the tip) and flickers in height."""
    h = rng.uniform(0.12, 0.3)
    cv, cf, cuv, _ = _tube(origin, UP, h, 0.025, 0.025, 2, 12)
    wax = Material(tuple(rng.uniform([0.75, 0.7, 0.6], [0.95, 0.9, 0.85])), None, 0.5)
    base = origin + UP * (h + 0.008)
    fh = rng.uniform(0.03, 0.05)
    lat = np.linspace(0, np.pi, 9)
    lon = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    s = (1 - np.cos(la)) / 2  # 0 at the bottom, 1 at the tip
    r = fh * 0.22 * np.sin(la) * (1 - 0.6 * s)
    verts = np.stack([r * np.cos(lo), r * np.sin(lo), s * fh], -1).reshape(-1, 3) + base
    faces = []
    m = len(lon)
    for i in range(len(lat) - 1):
        for j in range(m):
            a, b = i * m + j, i * m + (j + 1) % m
            faces += [(a, b, b + m), (a, b + m, a + m)]
    sv = s.ravel()
    rows = []
    for e in (np.array([1.0, 0, 0]), np.array([0, 1.0, 0])):
        row = wind.mode(base, e, rng.uniform(1.0, 3.0), rng.uniform(0.05, 0.2))
        bank.rows[row] *= fh * rng.uniform(0.05, 0.2)
        rows.append((row, e))
    stretch = wind.mode(base, UP, rng.uniform(1.5, 3.0), 0.1)
    bank.rows[stretch] *= fh * 0.1
    idx = np.tile(np.array([rows[0][0], rows[1][0], stretch], np.int32), (len(verts), 1))
    w = np.stack([sv[:, None] ** 2 * rows[0][1], sv[:, None] ** 2 * rows[1][1], sv[:, None] * UP], 1)
    flame = Part("flame", verts, np.array(faces, np.int32), np.stack([lo.ravel(), sv], 1).astype(np.float32),
                 Material((1.0, 0.55, 0.15), None, 0.5, emission=rng.uniform(8, 20)),
                 VertexModes(idx, w.astype(np.float32)))
    return [_static("candle", cv, cf, cuv, wax), flame]


# ----------------------------------------------------------------------------- backgrounds, light, cameras
def _backdrop(rng: np.random.Generator, still: str, focus: np.ndarray, distance: float, indoor: bool
              ) -> list[Part]:
    """Static surroundings: a still on a distant plane (or a wall), ground, a few rocks."""
    parts = []
    uv, faces = _grid(2, 2)
    w = distance * 3.0
    back = focus + np.array([0.0, distance, 0.0])
    verts = back + np.stack([(uv[:, 0] - 0.5) * w, np.zeros(4), (uv[:, 1] - 0.2) * w * 0.62], 1)
    parts.append(_static("backdrop", verts, faces, uv, Material((0.5, 0.5, 0.5), still, 1.0, specular=0.0)))
    g = distance * 2.0
    gverts = focus + np.stack([(uv[:, 0] - 0.5) * g, (uv[:, 1] - 0.3) * g, np.full(4, -0.01)], 1)
    ground = (0.2, 0.17, 0.12) if indoor else tuple(rng.uniform([0.15, 0.15, 0.05], [0.4, 0.35, 0.2]))
    parts.append(_static("ground", gverts, faces, uv * 8, Material(ground, None, 0.95)))
    for i in range(int(rng.integers(0, 4)) if not indoor else 0):
        at = focus + np.array([rng.uniform(-distance / 3, distance / 3), rng.uniform(-2, distance / 2), 0.0])
        v, f, u = _blob(rng, at, rng.uniform(0.2, 0.9))
        parts.append(_static(f"rock{i}", v, f, u, Material(tuple(rng.uniform(0.25, 0.5, 3)), None, 0.9)))
    return parts


def _lighting(rng: np.random.Generator, indoor: bool) -> Lighting:
    if indoor:
        return Lighting(30.0, 0.0, (1.0, 0.8, 0.6), 0.05, (0.05, 0.04, 0.03), 0.3)
    tod = rng.choice(["noon", "morning", "evening", "overcast"])
    elev = {"noon": rng.uniform(45, 75), "morning": rng.uniform(12, 30), "evening": rng.uniform(4, 15),
            "overcast": rng.uniform(30, 60)}[tod]
    sun = {"noon": (1.0, 0.97, 0.92), "morning": (1.0, 0.9, 0.75), "evening": (1.0, 0.6, 0.35),
           "overcast": (0.9, 0.92, 1.0)}[tod]
    sky = {"noon": (0.45, 0.6, 0.9), "morning": (0.6, 0.65, 0.8), "evening": (0.8, 0.5, 0.35),
           "overcast": (0.7, 0.72, 0.75)}[tod]
    strength = {"noon": 4.0, "morning": 3.0, "evening": 2.0, "overcast": 0.6}[tod]
    return Lighting(float(elev), float(rng.uniform(0, 360)), sun, strength, sky,
                    {"overcast": 1.6}.get(tod, 0.8))


def _cameras(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray, n: int, water: bool = False,
             grass: bool = False, stream: bool = False) -> list[Camera]:
    """``n`` cameras in front of (towards -y from) the subject's bounding box ``lo .. hi``, each
    framing it whole or in part (a wider or a closer view), at eye height or a little above; a
    stream is seen from its bank, looking across or down at the water."""
    cams = []
    centre, extent = (lo + hi) / 2, hi - lo
    for _ in range(n):
        lens = float(rng.uniform(24, 85))
        half_v = math.atan(36.0 * 160 / 256 / 2 / lens)
        if stream:
            dist = float(np.exp(rng.uniform(math.log(1.2), math.log(7.0)))) * lens / 35.0  # close: water fills it
            target = centre + np.array([rng.uniform(-1, 1), rng.uniform(-0.5, 0.5), 0.0])
            height = float(rng.uniform(0.8, 2.5))
        elif water:
            dist = float(rng.uniform(4.0, 12.0)) * lens / 35.0
            target = centre + np.array([rng.uniform(-2, 2), rng.uniform(-1, 3), 0.0])
            height = float(rng.uniform(0.8, 3.0))
        else:
            span = max(float(extent[2]), float(max(extent[0], extent[1])) * 0.6, 0.05)
            if grass:  # a meadow is seen from close by, a blade's height or a few away
                span = float(extent[2]) * rng.uniform(1.5, 5.0)
                centre = np.array([centre[0], lo[1] + span, extent[2] * 0.5])
            dist = span / 2 / math.tan(half_v) * float(rng.uniform(0.7, 1.5))
            target = centre + rng.normal(0, 0.1, 3) * np.minimum(extent, span)
            height = float(target[2] + dist * rng.uniform(-0.1, 0.25))
        az = math.radians(rng.uniform(-35, 35)) - math.pi / 2  # in front, looking towards +y
        loc = target + dist * np.array([math.cos(az), math.sin(az), 0.0])
        loc[2] = max(height, 0.05)
        cams.append(Camera(tuple(float(x) for x in loc), tuple(float(x) for x in target), lens,
                           float(rng.normal(0, 0.03))))
    return cams


def _closeup(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> Camera:
    """A camera close to the crown ``lo .. hi`` whose view the foliage fills (a backdrop of leaves
    with the sky and the scene behind showing through), looking level or a little up into it."""
    centre, extent = (lo + hi) / 2, hi - lo
    lens = float(rng.uniform(35, 85))
    half_v = math.atan(36.0 * 160 / 256 / 2 / lens)
    span = float(max(extent[0], extent[2])) * float(rng.uniform(0.25, 0.6))
    dist = span / 2 / math.tan(half_v)
    target = centre + rng.normal(0, 0.15, 3) * extent
    az = math.radians(rng.uniform(-35, 35)) - math.pi / 2
    loc = target + dist * np.array([math.cos(az), math.sin(az), 0.0])
    loc[2] = max(float(target[2] + dist * rng.uniform(-0.35, 0.05)), 0.3)
    return Camera(tuple(float(x) for x in loc), tuple(float(x) for x in target), lens, float(rng.normal(0, 0.03)))


# ----------------------------------------------------------------------------- public
def build_scene(seed: int, kind: str | None = None, *, stills: tuple[str, ...], cameras: int = 4,
                fps: float = DEFAULT_FPS, num_frames: int = DEFAULT_FRAMES, closeups: float = 0.0,
                leaf_density: float = 1.0) -> Scene:
    """Scene number ``seed`` (a pure function of its arguments). ``kind``: one of ``KINDS``, or None
    to draw one; ``stills``: the names of the licensed stills its textures may use; ``closeups``: the
    share of a tree's cameras that look into its crown, close enough for the leaves to fill the view
    (drawn from a generator of their own, so every other part of the scene is the same at any share);
    ``leaf_density``: a tree's leaves per twig relative to the default (1 keeps every scene as it was)."""
    rng = np.random.default_rng([seed, 20251206])
    kind = kind or str(rng.choice(KINDS, p=[0.35, 0.2, 0.15, 0.15, 0.15]))
    if kind not in ALL_KINDS:
        raise ValueError(f"unknown scene kind {kind!r}; choose one of {', '.join(ALL_KINDS)}")
    bank = ModeBank(num_frames, fps)
    wind = Wind(rng, bank, strength=float(rng.uniform(0.5, 1.5)))

    def pick() -> str:
        return str(rng.choice(list(stills)))

    if kind == "flag":  # a flag streams downwind: seen from the front when the wind crosses the view
        wind.direction = np.array([1.0 if rng.random() < 0.5 else -1.0, rng.normal(0, 0.2), 0.0])
        wind.direction /= np.linalg.norm(wind.direction)
    origin = np.zeros(3)
    builders: dict[str, Callable[[], list[Part]]] = {
        "tree": lambda: _tree(rng, bank, wind, pick() if rng.random() < 0.7 else None,
                              pick() if rng.random() < 0.3 else None, origin, leaf_density),
        "grass": lambda: _grass(rng, bank, wind, pick() if rng.random() < 0.5 else None, origin),
        "flag": lambda: _flag(rng, bank, wind, pick() if rng.random() < 0.7 else None, origin),
        "water": lambda: _water(rng, bank, wind, pick() if rng.random() < 0.4 else None, origin),
        "candle": lambda: _candle(rng, bank, wind, None, origin),
        "stream": lambda: _stream(rng, bank, wind, pick() if rng.random() < 0.5 else None, origin),
    }
    parts = builders[kind]()
    indoor = kind == "candle"
    lo = np.min([p.verts.min(0) for p in parts], axis=0)
    hi = np.max([p.verts.max(0) for p in parts], axis=0)
    if kind == "flag":
        lo[2] = hi[2] - (hi[2] - lo[2]) * 0.45  # the cloth, not the whole pole
    size = float(max(hi - lo)) if kind not in ("water", "stream") else 8.0
    focus = (lo + hi) / 2
    parts += _backdrop(rng, pick(), focus * np.array([1, 1, 0]) + np.array([0, hi[1] - focus[1], 0]),
                       size * rng.uniform(2.5, 5.0), indoor)
    light = _lighting(rng, indoor)
    if indoor:
        light.point = (0.0, 0.0, float(hi[2] + 0.1), float(rng.uniform(1.0, 3.0)))
    cams = _cameras(rng, lo, hi, cameras, water=kind == "water", grass=kind == "grass", stream=kind == "stream")
    if kind == "tree" and closeups > 0:
        crown = parts[1].verts  # the leaves
        close = np.random.default_rng([seed, 20251206, 2])
        cams = [_closeup(close, crown.min(0), crown.max(0)) if close.random() < closeups else c for c in cams]
    q = bank.array()
    q -= q[:, :1]  # frame 0 is the rest pose: the still shows the geometry as built, at any gain
    return Scene(kind, seed, parts, q, light, cams, fps, num_frames,
                 {"wind_speed": wind.speed, "modes": len(bank.rows)})
