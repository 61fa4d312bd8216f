"""Every shipped model folder is read by one module, and every way it can be damaged is one line.

For each shipped folder (the prior's torch weights and their ONNX export, the neural renderer, the
learned Eulerian baseline) a copy gets each listed file truncated, flipped or deleted, and its
index damaged in each way an index can be; the model's own loader then raises the one-line
``FormatError`` (or ``MissingWeightsError``) that names the file, never a traceback. Copies are
hard links; a damaged file is written anew, so the shipped files are never touched.
"""

from __future__ import annotations

import json
import re
import os
import shutil
from pathlib import Path

import pytest

from gid.gid_engine.assets import PRIOR_DIR, PRIOR_ONNX_DIR, RENDERER_DIR, STATIC_FLOW_DIR
from gid.gid_engine.errors import FormatError, GidError, MissingWeightsError
from gid.gid_engine.model_folder import (INDEX_FORMAT, INDEX_VERSION, KINDS, MOTION_PRIOR, MOTION_PRIOR_ONNX, RENDERER,
                                         STATIC_FLOW, ModelKind, read_index)


def _load_prior_onnx(folder: Path) -> None:
    from gid.gid_engine.prediction.onnx_pipeline import OnnxPriorPipeline

    OnnxPriorPipeline.load(folder, device="cpu", threads=1)


def _load_renderer_onnx(folder: Path) -> None:
    from gid.gid_engine.rendering.neural import OnnxNeuralRenderer

    OnnxNeuralRenderer(folder, device="cpu", threads=1)


def _load_prior_torch(folder: Path) -> None:
    pytest.importorskip("diffusers")
    from gid.gid_tools.motion_prior.weights import load_weights

    load_weights(folder)


def _load_renderer_torch(folder: Path) -> None:
    pytest.importorskip("torch")
    from gid.gid_tools.renderer.checkpoint import load_renderer

    load_renderer(folder)


def _load_static_flow(folder: Path) -> None:
    pytest.importorskip("torch")
    from gid.gid_tools.motion_prior.static_flow import load_static_flow

    if load_static_flow(folder) is None:
        raise MissingWeightsError("not installed")


# (shipped folder, kind, the loaders that read it); the renderer's two loaders each read their own
# files (the ONNX graphs or the torch weights), the others read the whole folder
FOLDERS = {
    "motion_prior": (PRIOR_DIR, MOTION_PRIOR, [_load_prior_torch]),
    "motion_prior_onnx": (PRIOR_ONNX_DIR, MOTION_PRIOR_ONNX, [_load_prior_onnx]),
    "renderer": (RENDERER_DIR, RENDERER, [_load_renderer_onnx, _load_renderer_torch]),
    "static_flow": (STATIC_FLOW_DIR, STATIC_FLOW, [_load_static_flow]),
}
READS = {_load_renderer_onnx: ".onnx", _load_renderer_torch: ".safetensors"}


def _shipped(name: str) -> tuple[Path, ModelKind, list]:
    folder, kind, loaders = FOLDERS[name]
    if not (folder / kind.index_name).is_file():
        pytest.skip(f"{folder} is not shipped in this checkout")
    return folder, kind, loaders


def _copy(folder: Path, tmp_path: Path) -> Path:
    copy = tmp_path / folder.name
    shutil.copytree(folder, copy, copy_function=os.link, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def _rewrite(path: Path, data: bytes) -> None:
    """Replace ``path`` by a new file (never writes through the hard link to the shipped one)."""
    path.unlink()
    path.write_bytes(data)


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and len(text) < 400, text
    return text


def test_one_module_knows_every_shipped_folder():
    assert {k.name for k in KINDS} == set(FOLDERS)
    for name in FOLDERS:
        folder, kind, _ = FOLDERS[name]
        if not (folder / kind.index_name).is_file():
            continue
        raw = json.loads((folder / kind.index_name).read_text())
        assert (raw["format"], raw["version"], raw["kind"]) == (INDEX_FORMAT, INDEX_VERSION, kind.name)
        assert raw["capabilities"] and all(isinstance(c, str) for c in raw["capabilities"])
        index = read_index(folder, kind)  # verifies every file
        assert sum(e["bytes"] for e in index["files"]) == index["total_bytes"] > 0


@pytest.mark.parametrize("name", list(FOLDERS))
@pytest.mark.parametrize("damage", ["truncated", "flipped", "deleted"])
def test_each_damaged_file_is_one_line_naming_it(name, damage, tmp_path):
    folder, kind, loaders = _shipped(name)
    index = read_index(folder, kind, verify=False)
    for entry in index["files"]:
        copy = _copy(folder, tmp_path / entry["name"])
        path = copy / entry["name"]
        data = path.read_bytes()
        if damage == "truncated":
            _rewrite(path, data[: len(data) // 2])
        elif damage == "flipped":
            _rewrite(path, data[:-1] + bytes([data[-1] ^ 0xFF]))
        else:
            path.unlink()
        with pytest.raises(FormatError) as info:
            read_index(copy, kind)
        assert entry["name"] in _one_line(info.value)
        for load in loaders:
            if not entry["name"].endswith(READS.get(load, "")):
                continue
            with pytest.raises(FormatError) as info:
                load(copy)
            assert entry["name"] in _one_line(info.value)


INDEX_DAMAGE = {
    "not-json": lambda doc: b"{not json",
    "not-an-object": lambda doc: b"[1, 2]",
    "empty": lambda doc: b"",
    "other-kind": lambda doc: json.dumps({**doc, "kind": "something-else"}).encode(),
    "newer-version": lambda doc: json.dumps({**doc, "version": INDEX_VERSION + 1}).encode(),
    "no-files": lambda doc: json.dumps({k: v for k, v in doc.items() if k != "files"}).encode(),
    "no-capabilities": lambda doc: json.dumps({k: v for k, v in doc.items() if k != "capabilities"}).encode(),
    "wrong-checksum": lambda doc: json.dumps({**doc, "files": [dict(e, sha256="0" * 64)
                                                                for e in doc["files"]]}).encode(),
}


@pytest.mark.parametrize("name", list(FOLDERS))
@pytest.mark.parametrize("damage", list(INDEX_DAMAGE))
def test_each_damaged_index_is_one_line(name, damage, tmp_path):
    folder, kind, loaders = _shipped(name)
    copy = _copy(folder, tmp_path)
    doc = json.loads((folder / kind.index_name).read_text())
    _rewrite(copy / kind.index_name, INDEX_DAMAGE[damage](doc))
    for load in [lambda f: read_index(f, kind)] + loaders:
        with pytest.raises(FormatError) as info:
            load(copy)
        text = _one_line(info.value)
        assert kind.index_name in text or kind.title in text or "checksum" in text


@pytest.mark.parametrize("name", list(FOLDERS))
def test_a_missing_index_means_not_installed(name, tmp_path):
    folder, kind, loaders = _shipped(name)
    copy = _copy(folder, tmp_path)
    (copy / kind.index_name).unlink()
    with pytest.raises(MissingWeightsError, match=re.escape(f"{kind.title} is not installed")):
        read_index(copy, kind)
    for load in loaders:
        with pytest.raises(MissingWeightsError):
            load(copy)


def test_a_reader_that_needs_a_capability_the_folder_lacks_says_so(tmp_path):
    folder, kind, _ = _shipped("renderer")
    copy = _copy(folder, tmp_path)
    doc = json.loads((folder / kind.index_name).read_text())
    _rewrite(copy / kind.index_name, json.dumps({**doc, "capabilities": ["torch_weights"]}).encode())
    with pytest.raises(FormatError, match=r"the neural renderer in .* cannot onnx \(it can: torch_weights\)"):
        _load_renderer_onnx(copy)


def test_version_1_indexes_are_still_read(tmp_path):
    """Folders exported before one index format load with the capabilities their keys imply."""
    folder, kind, _ = _shipped("motion_prior_onnx")
    copy = _copy(folder, tmp_path)
    doc = json.loads((folder / kind.index_name).read_text())
    old = {k: v for k, v in doc.items() if k not in ("kind", "capabilities")}
    old.update(format="gid.motion_prior_onnx", version=1)
    _rewrite(copy / kind.index_name, json.dumps(old).encode())
    assert set(read_index(copy, kind)["capabilities"]) == set(doc["capabilities"])
    _load_prior_onnx(copy)

    folder, kind, _ = _shipped("renderer")
    copy = _copy(folder, tmp_path / "r")
    doc = json.loads((folder / kind.index_name).read_text())
    old = {k: v for k, v in doc.items() if k not in ("format", "version", "kind", "capabilities", "total_bytes")}
    old["files"] = {e["name"]: e["sha256"] for e in doc["files"]}
    _rewrite(copy / kind.index_name, json.dumps(old).encode())
    assert set(read_index(copy, kind)["capabilities"]) == {"onnx", "torch_weights"}
    _load_renderer_onnx(copy)


def test_errors_are_gid_errors():
    assert issubclass(FormatError, GidError) and issubclass(MissingWeightsError, GidError)
