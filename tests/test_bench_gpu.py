"""`gid bench --gpu`'s rows, run on the CPU so the code stays working where no GPU is lent
(the figures themselves come from the GPU machine and live in the README, not in tests)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

import gid.gid_tools.bench_gpu as bench_gpu


def test_gpu_bench_rows_run_on_the_cpu(monkeypatch):
    monkeypatch.setattr(bench_gpu, "BATCH", 2)
    sizes = ((512, 288), (128, 72))
    rows = bench_gpu._neural_rows(1, "cpu", sizes) + bench_gpu._splat_rows(1, "cpu", sizes)
    assert [r["size"] for r in rows] == ["512x288"] * 4 + ["128x72"] * 4 + ["512x288", "128x72"]
    assert all(r["unit"] == "fps" and 0 < r["value"] < 1e6 for r in rows)
    goal_rows = [r for r in rows if r["goal"]]
    assert goal_rows and all(r["vs_goal"] == pytest.approx(r["value"] / r["goal"]) for r in goal_rows)


def test_gpu_bench_refuses_without_cuda():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(RuntimeError, match="needs a CUDA GPU"):
        bench_gpu.bench_gpu(repeats=1, prior=False)
