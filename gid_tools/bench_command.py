"""``gid bench``: the CPU table (``bench``) or, with ``--gpu``, the GPU rows (``bench_gpu``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_commands(sub: Any) -> None:
    """``gid bench``: added to the CLI's subcommands (``cli.COMMAND_MODULES``)."""
    p = sub.add_parser("bench", help="measure extraction and rendering speed")
    p.add_argument("--quick", action="store_true", help="fewer repetitions")
    p.add_argument("--json", default=None, help="also write the results as JSON")
    p.add_argument("--backends", nargs="+", default=["onnx", "torch"], choices=["onnx", "torch"])
    p.add_argument("--no-prior", action="store_true", help="skip the learned-prior prediction rows (minutes)")
    p.add_argument("--paper-steps", action="store_true", help="also time the prior at the paper's 250 DDIM steps "
                   "(CPU rows only; minutes per backend on 2 cores)")
    p.add_argument("--gpu", action="store_true", help="the GPU rows instead (torch CUDA): prior latency, neural "
                   "renderer fps per frame and batched, animate end to end")
    p.set_defaults(func=_command)


def _command(args: argparse.Namespace) -> None:
    from ..gid_engine.cli import print_result, say
    from .bench import format_table, machine_description, run_bench

    if args.gpu:
        import json as _json

        from .bench_gpu import bench_gpu, gpu_name

        rows = bench_gpu(repeats=2 if args.quick else 5, prior=not args.no_prior)
        say(f"gid bench --gpu — {gpu_name()}; host {machine_description()}")
        print_result(format_table(rows))
        if args.json:
            Path(args.json).write_text(_json.dumps({"machine": gpu_name(), "host": machine_description(),
                                                    "rows": rows}, indent=2))
        return
    run_bench(quick=args.quick, json_path=args.json, backends=args.backends, prior=not args.no_prior,
              paper_steps=args.paper_steps)
