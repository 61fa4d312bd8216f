"""Experiment (2026-12-08): other correction gates on covered pixels, scored on one renderer's weights.

The synthesis network's correction reaches the frame only through the gate (``base + gate * out``), so
each variant is the same forward pass with another gate: the correction is computed once per triple
(the gate forced to 1) and blended with every variant. Holes keep ``1 - confidence``; the variants differ
on covered pixels (the run record's plan.md names them). For each data set and variant: the paired PSNR
change against the ``current`` gate and against the plain splat, on the disoccluded pixels and on the whole
frame, with ``gid eval render``'s block-bootstrap intervals.

Usage: python tools/experiments/gate_variants.py OUT.json WEIGHTS VARIANT[,VARIANT...] SOURCE [...]
SOURCE: a clip, a simulated shard folder (its held-out triples), ``extracted:FOLDER`` (the same with the
flow gid's extraction finds between their frames) or ``synthetic-extracted`` (the held-out synthetic triples
with extracted flow, as ``gid eval render`` makes them).
"""
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import gid.gid_tools.renderer.neural_renderer as nr
from gid.gid_engine.repo_data import DEFAULT_STILL_SET
from gid.gid_tools.motion_prior.data.synthetic import still_splits
from gid.gid_tools.renderer.checkpoint import load_renderer
from gid.gid_tools.renderer.data import real_triples, sim_triples, synthetic_triple, with_extracted_flow
from gid.gid_tools.renderer.evaluate import disocclusion_mask, paired_gain, psnr

torch.set_num_threads(int(__import__("os").environ.get("GATE_THREADS", "1")))
R = nr.GATE_RADIUS
current_gate = nr.correction_gate


def flow_range(flow: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W): the flow's range over the gate's window, per component (max - min), as a vector length."""
    def rng(c: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(c, 2 * R + 1, stride=1, padding=R) + F.max_pool2d(-c, 2 * R + 1, stride=1, padding=R)
    return torch.sqrt(rng(flow[:, 0:1]).square() + rng(flow[:, 1:2]).square())


def variant_gate(name: str, flow: torch.Tensor, confidence: torch.Tensor) -> torch.Tensor:
    hole = 1.0 - confidence
    if name == "current":
        return current_gate(flow, confidence)
    if name == "holes_only":
        return hole
    if name == "half":
        return torch.maximum(hole, 0.5 * current_gate(flow, confidence))
    if name.startswith("range_"):
        return torch.maximum(hole, torch.clamp(flow_range(flow) / float(name[6:]), 0.0, 1.0))
    raise SystemExit(f"unknown variant {name}")


captured: dict = {}


def open_gate(flow: torch.Tensor, confidence: torch.Tensor) -> torch.Tensor:
    captured["flow"], captured["confidence"] = flow, confidence
    return torch.ones_like(confidence)


def triples(source: str) -> list:
    if source == "synthetic-extracted":
        split = still_splits(DEFAULT_STILL_SET)[1]
        return [with_extracted_flow(synthetic_triple(i, seed=0, split=split)) for i in range(32)]
    if source.startswith("extracted:"):  # a simulated folder's held-out triples with extracted flow
        return sim_triples(source[10:], extracted_flow=True)
    if Path(source).is_dir():
        return sim_triples(source)
    return real_triples(source, split="eval")


def main() -> None:
    nr.correction_gate = open_gate  # render() looks the gate up at call time
    out_path, weights, variants = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3].split(",")
    sources = sys.argv[4:]
    model = load_renderer(weights)
    results = json.loads(out_path.read_text()) if out_path.is_file() else {}
    for source in sources:
        scores: dict[str, dict[str, list[float]]] = {v: {"holes": [], "whole": []}
                                                  for v in dict.fromkeys(["splat", "current", *variants])}
        checked = False
        for tr in triples(source):
            x = [torch.from_numpy(v[None]) for v in (tr.image, tr.flow, tr.z)]
            with torch.no_grad():
                opened = model(*x)
                base = model.plain(*x)
                gates = {v: variant_gate(v, captured["flow"], captured["confidence"])
                         for v in dict.fromkeys(["current", *variants])}
            if not checked:  # the blend reproduces the renderer with its own gate (so the base is the plain frame)
                nr.correction_gate = current_gate
                with torch.no_grad():
                    shipped = model(*x)
                nr.correction_gate = open_gate
                gap = float((shipped - (base + gates["current"] * (opened - base))).abs().max())
                assert gap < 1e-4, f"the blend differs from the renderer by {gap}"
                checked = True
            correction = opened - base
            mask = disocclusion_mask(tr)
            frames = {"splat": base} | {v: base + g * correction for v, g in gates.items()}
            for v, frame in frames.items():
                f = frame[0].clamp(0, 1).numpy()
                scores[v]["whole"].append(psnr(f, tr.target))
                scores[v]["holes"].append(psnr(f, tr.target, mask) if mask.sum() >= 1 else float("nan"))
        row: dict = {}
        for v in variants:
            row[v] = {}
            for region in ("holes", "whole"):
                a, c, s = (np.asarray(scores[k][region]) for k in (v, "current", "splat"))
                ok = ~np.isnan(a)
                row[v][region] = {"vs_current": paired_gain(a[ok], c[ok]), "vs_splat": paired_gain(a[ok], s[ok])}
        name = source if source == "synthetic-extracted" else ("extracted " * source.startswith("extracted:")
                                                                 + Path(source.split(":", 1)[-1]).name)
        results[name] = row
        print(name, json.dumps({v: {r: round(row[v][r]["vs_current"]["mean"], 4) for r in row[v]} for v in row}),
              flush=True)
        out_path.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
