"""``gid bench --gpu``: the GPU rows of the issues' speed goals, measured through torch CUDA.

Goals (issues 4, 5 and 6, on an H100): prediction at 256x160 in <= 1 s, the neural renderer at
>= 250 fps at 512x288, one still -> 150-frame loop in <= 2 s. Three ways of counting frames, all
reported, because they answer different questions:

* ``per frame``: one frame at a time with the motion uploaded and the frame downloaded (numpy in,
  numpy out), what ``gid render`` did before it batched;
* ``gid render path``: ``render_frames`` itself, which on a GPU evaluates the motion on the CPU and
  hands the network ``BATCH`` frames per call (``TorchNeuralRenderer.batch_size``);
* ``batched on GPU``: frames rendered ``BATCH`` at a time from motion already on the GPU, the
  frames left there (what a GPU-resident pipeline would see);
* the same with bf16 autocast.

Timings are CUDA-synchronised medians after a warm-up. The onnxruntime CUDA provider is not
measured here unless its wheel is installed (the lent GPU machine has the CPU provider only).
"""

from __future__ import annotations

import statistics
import time
from typing import Callable

import numpy as np

from .bench import smooth_volume
from ..gid_engine.media.imaging import from_array

GOAL_PRIOR_S_H100 = 1.0
GOAL_NEURAL_FPS_H100 = 250.0
GOAL_ANIMATE_S_H100 = 2.0
BATCH = 16


def _cuda_median(fn: Callable[[], object], repeats: int) -> float:
    import torch

    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def gpu_name() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"


def bench_gpu(repeats: int = 5, prior: bool = True, device: str = "cuda") -> list[dict]:
    """The rows on ``device`` ("cuda"; "cpu" only to check this code on a machine without one)."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("gid bench --gpu needs a CUDA GPU visible to torch")
    torch.backends.cudnn.benchmark = True
    rows: list[dict] = []
    rows.extend(_neural_rows(repeats, device))
    rows.extend(_splat_rows(repeats, device))
    if prior:
        rows.extend(_prior_rows(device))
        rows.extend(_animate_rows(device))
    return rows


def _row(task: str, size: str, backend: str, value: float, unit: str, goal: float | None) -> dict:
    vs = None
    if goal:
        vs = goal / value if unit == "s" else value / goal
    return {"task": task, "size": size, "backend": backend, "value": value, "unit": unit, "goal": goal, "vs_goal": vs}


def _inputs(width: int, height: int, device: str, batch: int = 1):
    """A random still, and ``batch`` frames of motion from a smooth volume, on ``device``."""
    import torch

    from ..gid_engine.rendering.render import Timing, frame_times, prepare_motion

    sv = smooth_volume(256, 144)
    prepared = prepare_motion(sv, width, height, fit="stretch")
    times = frame_times(sv, Timing(frames=batch + 1))[1 : batch + 1]
    flows = np.stack([prepared.displacement_at(float(t)) for t in times]).astype(np.float32)
    z = np.linalg.norm(flows, axis=1, keepdims=True).mean(axis=0, keepdims=True).repeat(batch, 0)
    image = np.random.default_rng(2).random((1, 3, height, width)).astype(np.float32)
    return (torch.from_numpy(image).to(device), torch.from_numpy(flows).to(device),
            torch.from_numpy(np.ascontiguousarray(z)).to(device), flows, z)


SIZES = ((512, 288), (1920, 1080))


def _neural_rows(repeats: int, device: str, sizes: tuple[tuple[int, int], ...] = SIZES) -> list[dict]:
    import torch

    from .renderer.checkpoint import load_renderer

    model = load_renderer().eval().to(device)
    name = f"torch {device} ({gpu_name()})"
    rows = []
    for width, height in sizes:
        goal = GOAL_NEURAL_FPS_H100 if width == 512 else None
        image, flows, z, flows_np, z_np = _inputs(width, height, device, BATCH)
        with torch.inference_mode():
            feats = model.encode(image)
            one = [f.expand(1, -1, -1, -1) for f in feats]

            def per_frame() -> None:  # numpy in, numpy out, as gid render calls it
                f = torch.from_numpy(flows_np[:1]).to(device)
                w = torch.from_numpy(z_np[:1]).to(device)
                model.render(*one, f, w).cpu().numpy()

            secs = _cuda_median(per_frame, repeats * 4)
            rows.append(_row("neural render, per frame (upload + download)", f"{width}x{height}", name,
                             1.0 / secs, "fps", goal))
            rows.append(_row(f"neural render, gid render path ({BATCH} frames per call)", f"{width}x{height}",
                             name, _render_path_fps(model, device, width, height, repeats), "fps", goal))
            many = [f.expand(BATCH, -1, -1, -1) for f in feats]
            secs = _cuda_median(lambda: model.render(*many, flows, z), repeats) / BATCH
            rows.append(_row(f"neural render, batched on GPU ({BATCH} frames)", f"{width}x{height}", name,
                             1.0 / secs, "fps", goal))
            with torch.autocast(device, dtype=torch.bfloat16):
                secs = _cuda_median(lambda: model.render(*many, flows, z), repeats) / BATCH
            rows.append(_row(f"neural render, batched on GPU, bf16 ({BATCH} frames)", f"{width}x{height}", name,
                             1.0 / secs, "fps", goal))
    return rows


def _render_path_fps(model, device: str, width: int, height: int, repeats: int) -> float:
    """Frames per second of ``render_frames`` (motion evaluation, colour handling, transfers)
    with the neural renderer batching ``BATCH`` frames per network call."""
    from ..gid_engine.rendering.render import Timing, render_frames
    from .renderer.torch_runtime import TorchNeuralRenderer

    renderer = TorchNeuralRenderer(model=model, device=device, batch_size=BATCH)
    still = from_array(np.random.default_rng(2).random((height, width, 3)).astype(np.float32))
    sv = smooth_volume(256, 144)
    n = 2 * BATCH

    def run() -> None:
        for _ in render_frames(still, sv, renderer, Timing(frames=n), fit="stretch", splat_resolution="full"):
            pass

    return n / _cuda_median(run, repeats)


def _splat_rows(repeats: int, device: str, sizes: tuple[tuple[int, int], ...] = SIZES) -> list[dict]:
    from ..gid_engine.rendering.render import Timing, make_splatter, render_frames

    splatter = make_splatter("torch", device=device)
    rows = []
    sv = smooth_volume(256, 144)
    for width, height in sizes:
        image = from_array(np.random.default_rng(2).random((height, width, 3)).astype(np.float32))
        frames = render_frames(image, sv, splatter, Timing(frames=10_000), fit="stretch", splat_resolution="full")
        secs = _cuda_median(lambda: next(frames), repeats * 4)
        rows.append(_row("render frame (full splat), gid render path", f"{width}x{height}",
                         f"torch {device} ({gpu_name()})", 1.0 / secs, "fps", None))
    return rows


def _prior_rows(device: str) -> list[dict]:
    """Prediction at 50 and 250 steps: fp32 replayed from CUDA graphs (the default), fp32 eager,
    bf16 autocast; and the sampling alone (no loop projection, no aspect handling) to show the
    fixed costs."""
    import torch

    from ..gid_engine.prediction.predict import WEIGHTS_DIR, predict_motion, torch_pipeline

    image = from_array(np.random.default_rng(3).random((160, 256, 3)).astype(np.float32))
    rows = []
    predict_motion(image, seed=0, steps=2, device=device, backend="torch")  # load + warm up
    pipe = torch_pipeline(WEIGHTS_DIR, "cuda" if device == "cuda" else "cpu")
    default = pipe.denoiser_dtype, pipe.cuda_graphs
    try:  # the pipeline is the process-wide cached one: put its settings back whatever happens
        for label, dtype, graphs in (("fp32, CUDA graphs", None, True), ("fp32, eager", None, False),
                                     ("bf16, CUDA graphs", torch.bfloat16, True)):
            pipe.denoiser_dtype, pipe.cuda_graphs = (dtype if device == "cuda" else None), graphs
            for steps in (pipe.config.default_steps, 250):
                secs = _cuda_median(lambda: predict_motion(image, seed=0, steps=steps, device=device,
                                                           backend="torch"), 3)
                rows.append(_row("predict motion (prior)", "256x160",
                                 f"torch {device} ({gpu_name()}, {label}, {steps} steps)", secs, "s",
                                 GOAL_PRIOR_S_H100))
            secs = _cuda_median(lambda: pipe(np.asarray(image.pixels[:, :, :3]), steps=None, seed=0), 3)
            rows.append(_row("prior sampling only (no loop projection)", "256x160",
                             f"torch {device} ({gpu_name()}, {label}, default steps)", secs, "s", None))
    finally:
        pipe.denoiser_dtype, pipe.cuda_graphs = default
    return rows


def _animate_rows(device: str) -> list[dict]:
    import tempfile
    from pathlib import Path

    from ..exporters.opencv import cv2
    from ..gid_engine.engine import Engine

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        still = Path(tmp) / "still.png"
        rgb = (np.random.default_rng(4).random((288, 512, 3)) * 255).astype(np.uint8)
        cv2.imwrite(str(still), cv2.GaussianBlur(rgb, (0, 0), 1.5))
        for renderer in ("splat", "neural"):
            engine = Engine(device=device, backend="torch", renderer=renderer)
            engine.animate(still, Path(tmp) / f"warm-{renderer}", steps=2, frames=2, preview=None)
            result = engine.animate(still, Path(tmp) / f"loop-{renderer}", preview=None)
            secs = result.seconds["total"]
            rows.append(_row("animate end to end (150 frames, PNG)", "512x288",
                             f"torch {device} ({renderer} renderer; predict {result.seconds['predict']:.2f} s)",
                             secs, "s", GOAL_ANIMATE_S_H100))
    return rows
