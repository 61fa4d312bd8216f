"""Shared fixtures: small deterministic images, clips and spectral volumes with known content,
and the add-on tests' Blender state (a registered add-on, a saved .blend holding a still).

Nothing here imports bpy at import time: the fixtures that need it skip without it, so every
test module (those of the engine, the bpy-free add-on logic) can use this file.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from gid.gid_engine.motion.spectral_volume import SpectralVolume

REPO = Path(__file__).resolve().parents[1]


def textured_image(h: int, w: int, seed: int = 0, channels: int = 3) -> np.ndarray:
    """Smooth random texture with some edges, float32 (H, W, C) in [0, 1]."""
    from gid.exporters.opencv import cv2

    rng = np.random.default_rng(seed)
    noise = rng.random((h, w, channels)).astype(np.float32)
    img = 0.6 * cv2.GaussianBlur(noise, (0, 0), 1.5) + 0.4 * cv2.GaussianBlur(noise, (0, 0), 4.0)
    img = (img - img.min()) / (img.max() - img.min() + 1e-6)
    img[h // 3 : h // 3 + 3, :, :] = 0.05  # a dark horizontal edge
    return np.clip(img, 0, 1).astype(np.float32).reshape(h, w, channels)


def random_volume(k: int = 16, h: int = 20, w: int = 30, seed: int = 0, decay: float = 0.3) -> SpectralVolume:
    """Random coefficients with power falling off with frequency, like natural motion."""
    rng = np.random.default_rng(seed)
    coeffs = rng.normal(size=(k, 4, h, w)).astype(np.float32)
    coeffs *= np.exp(-decay * np.arange(k, dtype=np.float32))[:, None, None, None]
    coeffs[0, 1] = 0.0  # DC of a real signal has no imaginary part
    coeffs[0, 3] = 0.0
    return SpectralVolume(coeffs, fps=30.0, num_frames=150, source="random")


@pytest.fixture
def volume() -> SpectralVolume:
    return random_volume()


# ----------------------------------------------------------------------------- the add-on's files
W, H = 64, 48  # the add-on tests' still


def write_still(path: Path, seed: int = 1) -> np.ndarray:
    """A textured 8-bit RGB PNG of ``W x H``; returns its pixels as uint8 RGB, top row first."""
    from gid.exporters.opencv import cv2

    rgb = (textured_image(H, W, seed=seed) * 255 + 0.5).astype(np.uint8)
    assert cv2.imwrite(str(path), rgb[:, :, ::-1])
    return rgb


def write_video(path: Path, frames: int = 40, fps: float = 15.0) -> None:
    """MJPG clip of a texture swaying sideways at 1 Hz by 2 px (2.7 s: mirrored by extraction)."""
    from gid.exporters.opencv import cv2

    base = (textured_image(H, W, seed=3) * 255).astype(np.uint8)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (W, H))
    assert writer.isOpened()
    for i in range(frames):
        dx = 2.0 * math.sin(2 * math.pi * 1.0 * i / fps)
        m = np.float32([[1, 0, dx], [0, 1, 0]])
        writer.write(cv2.warpAffine(base, m, (W, H), borderMode=cv2.BORDER_REFLECT)[:, :, ::-1])
    writer.release()


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.fixture(scope="session")
def motion_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 64x48 spectral volume with a few pixels of motion, made once for all bake tests."""
    from gid.gid_engine.motion.sv_file import save_spectral_volume

    vol = random_volume(h=H, w=W, seed=5)
    vol = vol.replace(coeffs=vol.coeffs * np.float32(0.5))
    path = tmp_path_factory.mktemp("motion") / "shared.gidsv"
    save_spectral_volume(vol, path)
    return path


# ----------------------------------------------------------------------------- the add-on in bpy
@pytest.fixture
def registered() -> Iterator[None]:
    """Empty factory state with the add-on registered; unregistered afterwards (needs bpy)."""
    pytest.importorskip("bpy")
    from blender_helpers import fresh_blend
    from gid import addon

    fresh_blend()
    addon.register()
    yield
    addon.unregister()
    fresh_blend()


@pytest.fixture
def scene_blend(registered: None, tmp_path: Path) -> dict:
    """A .blend saved in tmp_path holding the still ``tex.png`` (a real file on disk)."""
    bpy = pytest.importorskip("bpy")
    still = write_still(tmp_path / "tex.png")
    blend = tmp_path / "scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    image = bpy.data.images.load(str(tmp_path / "tex.png"))
    return {"dir": tmp_path, "blend": blend, "image": image, "still": still}
