"""Export the neural renderer to the two ONNX graphs the runtime ships (needs torch).

Legacy TorchScript exporter (opset 18), dynamic height and width (multiples of 4), batch 1. The
SHA-256 of each graph goes into ``renderer.json`` beside the weights it came from.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from ...gid_engine.model_folder import RENDERER, update_index
from ...gid_engine.rendering.neural import ENCODER_ONNX, FRAME_ONNX
from ..export_onnx import OPSET
from .checkpoint import WEIGHTS_DIR, load_renderer


def export_renderer_onnx(folder: Path | None = None, model=None, out: Path | None = None) -> list[Path]:
    """Write ``renderer_encoder.onnx`` and ``renderer_frame.onnx`` for ``model`` (default: the
    weights in ``folder``) into ``out`` (default: ``folder``) and record their checksums."""
    import torch

    folder = Path(folder or WEIGHTS_DIR)
    out = Path(out or folder)
    model = (model if model is not None else load_renderer(folder)).eval()
    out.mkdir(parents=True, exist_ok=True)

    class FrameModule(torch.nn.Module):
        def __init__(self, renderer) -> None:
            super().__init__()
            self.renderer = renderer

        def forward(self, f0, f1, f2, flow, z):
            return self.renderer.render(f0, f1, f2, flow, z)

    class EncoderModule(torch.nn.Module):
        def __init__(self, renderer) -> None:
            super().__init__()
            self.renderer = renderer

        def forward(self, image):
            return self.renderer.encode(image)

    g = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 48, 64, generator=g)
    with torch.no_grad():
        f0, f1, f2 = model.encode(image)
    flow = torch.randn(1, 2, 48, 64, generator=g) * 2
    z = torch.rand(1, 1, 48, 64, generator=g)
    written = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for module, args, inputs, outputs, name in (
            (EncoderModule(model), (image,), ["image"], ["f0", "f1", "f2"], ENCODER_ONNX),
            (FrameModule(model), (f0, f1, f2, flow, z), ["f0", "f1", "f2", "flow", "z"], ["frame"], FRAME_ONNX),
        ):
            tmp = out / (name + ".tmp")
            axes = {n: {2: f"h{n}", 3: f"w{n}"} for n in inputs + outputs}
            torch.onnx.export(module, args, str(tmp), dynamo=False, opset_version=OPSET, input_names=inputs,
                              output_names=outputs, dynamic_axes=axes)
            tmp.replace(out / name)
            written.append(out / name)
    if out != folder and not (out / RENDERER.index_name).is_file():  # graphs beside a copy of the source's index
        src = json.loads((folder / RENDERER.index_name).read_text())
        update_index(out, RENDERER, [], [], **{k: src[k] for k in ("config", "training", "default") if k in src})
    update_index(out, RENDERER, [p.name for p in written], ["onnx"])
    return written
