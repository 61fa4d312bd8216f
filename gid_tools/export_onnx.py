"""Export the torch reference renderer to the ONNX graph the runtime ships (needs torch).

The exported file is committed under ``gid_engine/assets`` so Blender never needs torch;
``gid export-onnx`` regenerates it and the parity test checks the two agree.
"""

from __future__ import annotations

import warnings
from pathlib import Path

OPSET = 18


def export_splat_onnx(path: Path) -> Path:
    """Write the softmax-splat renderer with dynamic channels, height and width."""
    import torch

    from .splat_torch import SoftmaxSplatRenderer

    model = SoftmaxSplatRenderer().eval()
    g = torch.Generator().manual_seed(0)
    example = (
        torch.rand(1, 3, 40, 56, generator=g),
        torch.randn(1, 2, 40, 56, generator=g),
        torch.rand(1, 1, 40, 56, generator=g),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation
        torch.onnx.export(
            model,
            example,
            str(tmp),
            dynamo=False,
            opset_version=OPSET,
            input_names=["image", "flow", "z"],
            output_names=["frame"],
            dynamic_axes={
                "image": {0: "n", 1: "c", 2: "h", 3: "w"},
                "flow": {0: "n", 2: "h", 3: "w"},
                "z": {0: "n", 2: "h", 3: "w"},
                "frame": {0: "n", 1: "c", 2: "h", 3: "w"},
            },
        )
    tmp.replace(path)
    return path

