"""The renderer's torch weights in its model folder: ``renderer.safetensors`` beside the ONNX graphs.

The folder (``gid_engine/assets/renderer/`` when shipped) is a checksummed model folder
(``gid_engine/model_folder.py``, kind ``renderer``): ``renderer.json`` holds the config, the
training summary, whether the weights are the default renderer, and every file's size and
SHA-256. torch builds the model here; the runtime runs the ONNX graphs exported from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...gid_engine.assets import RENDERER_DIR
from ...gid_engine.errors import FormatError
from ...gid_engine.model_folder import RENDERER, file_path, read_index, sha256_file, update_index

WEIGHTS_DIR = RENDERER_DIR
WEIGHTS_NAME = "renderer.safetensors"
INDEX_NAME = RENDERER.index_name


def save_renderer(model, folder: Path, extra: dict[str, Any] | None = None) -> Path:
    """Write the model's weights, then its index (config, ``extra``), each replaced atomically."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (WEIGHTS_NAME + ".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp))
    tmp.replace(folder / WEIGHTS_NAME)
    update_index(folder, RENDERER, [WEIGHTS_NAME], ["torch_weights"], config=model.config.to_dict(), **(extra or {}))
    return folder


def index_sha256(folder: Path) -> str:
    """The SHA-256 of ``folder``'s index: the provenance a warm start records."""
    return sha256_file(Path(folder) / INDEX_NAME)


def load_renderer(folder: Path | None = None):
    """The torch ``NeuralRenderer`` with verified weights, in eval mode."""
    from safetensors.torch import load_file

    from ...gid_engine.rendering.neural_config import RendererConfig
    from .neural_renderer import NeuralRenderer

    folder = Path(folder or WEIGHTS_DIR)
    doc = read_index(folder, RENDERER, verify=False, needs=["torch_weights"])
    path = file_path(folder, doc, WEIGHTS_NAME, RENDERER)
    model = NeuralRenderer(RendererConfig.from_dict(doc["config"]))
    try:
        model.load_state_dict(load_file(str(path)), strict=True)
    except (RuntimeError, ValueError) as exc:
        raise FormatError(f"{path.name} does not fit the renderer config: {str(exc).splitlines()[0][:160]}") from None
    return model.eval()
