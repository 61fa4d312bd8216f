"""The renderer's weights file: one safetensors file + its config, SHA-256 checked on load.

Shipped in ``gid_engine/assets/renderer/`` as ``renderer.safetensors`` (≤ 16 MiB) and
``renderer.json`` (config, SHA-256, training summary). torch is needed only to build the model;
the ONNX files exported from it are what Blender runs (see ``runtime``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import FormatError, GidError
from ..model_folder import sha256_file

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "assets" / "renderer"
WEIGHTS_NAME = "renderer.safetensors"
INDEX_NAME = "renderer.json"


class MissingRendererError(GidError):
    """The neural renderer's files are not installed."""


sha256 = sha256_file  # the motion prior's (torch-free module)


def read_index(folder: Path) -> dict[str, Any]:
    index = Path(folder) / INDEX_NAME
    if not index.is_file():
        raise MissingRendererError(f"the neural renderer is not installed (no {index}); use --renderer splat")
    try:
        doc = json.loads(index.read_text())
        doc["config"], doc["files"]
    except (ValueError, KeyError, TypeError):
        raise FormatError(f"{index} is corrupt; reinstall gid or re-export the renderer") from None
    return doc


def verify_file(folder: Path, name: str, doc: dict[str, Any]) -> Path:
    """The path of ``name`` after checking it exists and matches the index's SHA-256."""
    path = Path(folder) / name
    expected = doc["files"].get(name)
    if not path.is_file():
        raise MissingRendererError(f"renderer file missing: {path}; reinstall gid or use --renderer splat")
    if expected is None or sha256(path) != expected:
        raise FormatError(f"renderer file {path.name} is corrupt (checksum mismatch); reinstall gid or re-export")
    return path


def save_renderer(model, folder: Path, extra: dict[str, Any] | None = None) -> Path:
    """Write the model's weights and index (atomically, index last)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (WEIGHTS_NAME + ".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp))
    tmp.replace(folder / WEIGHTS_NAME)
    doc = read_existing(folder)
    doc.update({"config": model.config.to_dict(), **(extra or {})})
    doc.setdefault("files", {})[WEIGHTS_NAME] = sha256(folder / WEIGHTS_NAME)
    write_index(folder, doc)
    return folder


def read_existing(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((Path(folder) / INDEX_NAME).read_text())
    except (OSError, ValueError):
        return {}


def write_index(folder: Path, doc: dict[str, Any]) -> None:
    tmp = Path(folder) / (INDEX_NAME + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=True))
    tmp.replace(Path(folder) / INDEX_NAME)


def load_renderer(folder: Path | None = None):
    """The torch ``NeuralRenderer`` with verified weights, in eval mode."""
    from safetensors.torch import load_file

    from .configs import RendererConfig
    from .neural_renderer import NeuralRenderer

    folder = Path(folder or WEIGHTS_DIR)
    doc = read_index(folder)
    path = verify_file(folder, WEIGHTS_NAME, doc)
    model = NeuralRenderer(RendererConfig.from_dict(doc["config"]))
    try:
        model.load_state_dict(load_file(str(path)), strict=True)
    except (RuntimeError, ValueError) as exc:
        raise FormatError(f"{path.name} does not fit the renderer config: {str(exc).splitlines()[0][:160]}") from None
    return model.eval()
