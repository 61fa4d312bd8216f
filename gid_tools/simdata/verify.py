"""The ground truth checked against what the engine measures: for a few scenes, render the whole
window of camera 0 (every frame, as a clip), run ``extract_motion`` (what ``gid extract`` does) on
it and compare that volume with the exact one.

The two differ by the extraction's own error (optical flow on rendered frames: texture-poor
surfaces, occlusion edges, thin structures) and by the exact truth's harmonics above K; a large
gap on an easy scene would mean the truth and the renders disagree (a projection or timing bug).
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ...exporters.opencv import cv2
from ...gid_engine.motion.extract import extract_motion
from ...gid_engine.motion.spectral_volume import SpectralVolume
from .make import MakeSettings, prepare_view
from .truth import amplitude_px, spectral_volume


def compare(truth: SpectralVolume, measured: SpectralVolume, moving: np.ndarray) -> dict[str, float]:
    """Errors of ``measured`` against ``truth`` over the window's frames (both band-limited to K):
    end-point error on moving and static pixels, its ratio to the true displacement, and the
    correlation of the mean-magnitude maps."""
    a, b = truth.to_motion_texture(), measured.to_motion_texture()
    epe = np.hypot(a[:, 0] - b[:, 0], a[:, 1] - b[:, 1])  # (T, H, W)
    size = np.hypot(a[:, 0], a[:, 1])
    ma, mb = truth.mean_magnitude(), measured.mean_magnitude()
    corr = float(np.corrcoef(ma.ravel(), mb.ravel())[0, 1]) if ma.std() > 0 and mb.std() > 0 else math.nan
    static = ~moving
    return {
        "epe_moving_px": float(epe[:, moving].mean()) if moving.any() else math.nan,
        "true_displacement_moving_px": float(size[:, moving].mean()) if moving.any() else math.nan,
        "relative_epe_moving": float(epe[:, moving].mean() / max(size[:, moving].mean(), 1e-9)) if moving.any()
        else math.nan,
        "epe_static_px": float(epe[:, static].mean()) if static.any() else math.nan,
        "magnitude_corr": corr,
        "amplitude_ratio": float(mb[moving].mean() / max(ma[moving].mean(), 1e-9)) if moving.any() else math.nan,
    }


def verify_scenes(out: Path, count: int, settings: MakeSettings, *, start: int = 0, threads: int = 2
                  ) -> dict[str, Any]:
    """Verify scenes ``start .. start + count - 1`` of ``settings.split``; writes ``out/verify.json``."""
    from .blender import Stage

    stage = Stage(settings.width, settings.height, settings.samples, threads)
    rows = []
    for index in range(start, start + count):
        seed = settings.seed(index)
        scene = settings.build(seed)
        stage.build(scene)
        rng = np.random.default_rng([seed, 7])
        for ci, camera in enumerate(scene.cameras):
            view = prepare_view(stage, scene, camera, rng, settings)
            if view is None:
                continue
            gain, texture, moving = view.gain, view.texture, view.moving
            truth = spectral_volume(view.scene, texture, settings.k)
            t0 = time.perf_counter()
            with tempfile.TemporaryDirectory(prefix="gid-verify-") as tmp:
                for t in range(scene.num_frames):
                    frame = stage.render(t, gain)
                    cv2.imwrite(str(Path(tmp) / f"frame_{t:04d}.png"), (frame[:, :, ::-1] * 255 + 0.5).astype(np.uint8))
                render_s = time.perf_counter() - t0
                measured = extract_motion(tmp, fps=scene.fps, resolution=(settings.width, settings.height),
                                          k=settings.k)
            row = {"seed": seed, "kind": scene.kind, "camera": ci, "moving": float(moving.mean()),
                   "p99_displacement_px": amplitude_px(texture, moving), "render_s": render_s,
                   **compare(truth, measured, moving)}
            rows.append(row)
            print(json.dumps(row), flush=True)
            break  # the first usable camera of each scene
    keys = [k for k in rows[0] if isinstance(rows[0][k], float)] if rows else []
    summary = {k: float(np.nanmean([r[k] for r in rows])) for k in keys}
    summary["scenes"] = len(rows)
    report = {"rows": rows, "summary": summary, "settings": settings.__dict__}
    out.mkdir(parents=True, exist_ok=True)
    (out / "verify.json").write_text(json.dumps(report, indent=2))
    return report
