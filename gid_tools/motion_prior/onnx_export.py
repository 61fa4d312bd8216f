"""Export the motion prior to ONNX so it runs on numpy + onnxruntime (inside Blender, no torch).

Three graphs (legacy TorchScript exporter, opset 18, like the splat renderer's export):

* ``encoder.onnx``: image ``(N, 3, H, W)`` in [-1, 1] -> ``cond`` ``(N, C, h, w)``;
* ``denoiser.onnx``: ``latents (N, 4, h, w)``, ``timestep (N,)`` int64, ``freq_index (N,)`` int64,
  ``cond (N, C, h, w)`` -> ``eps``; the frequency-coordinated U-Net, so N must be a multiple of K
  (its frequency attention groups the batch into K-slice volumes). The batch is dynamic: K
  without guidance, 2K for conditional + null in one call;
* ``decoder.onnx``: *scaled* latents ``(N, 4, h, w)`` -> the normalized volume slices; the
  ``1 / latent_scale`` division is inside the graph (``latent_scale_in_decoder`` in the index);
* ``vae_encoder.onnx``: its inverse direction (posterior mode, times ``latent_scale``), and, on
  models with the static-flow condition, ``encoder.onnx``'s second output ``flow`` ``(N, 2, H, W)``:
  together they let the ONNX pipeline start from the Eulerian field (``eulerian_init.py``).

Every file must stay within the weights' 16 MiB file limit. The shipped denoiser is ~20 MB of
fp32 weights, so its weights go to ONNX external-data files, split into <= 16 MiB pieces that
onnxruntime reads next to the graph (fp32 kept: fp16 would halve it but cost parity). The folder,
with ``prior_onnx.json`` (config, latent scale, normalizer scales, scheduler, input/output names,
SHA-256 of every file), is written to a temporary sibling and swapped in whole.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from torch import nn

from ...gid_engine.errors import InputError
from ...gid_engine.assets import PRIOR_ONNX_DIR
from ...gid_engine.model_folder import (MOTION_PRIOR_ONNX, jsonable, list_files, make_index, publish_folder,
                                        sha256_file, write_index)
from ...gid_engine.prediction.onnx_pipeline import DECODER, DENOISER, ENCODER, FLOW_OUTPUT, VAE_ENCODER
from .weights import MAX_FILE_BYTES

OPSET = 18
DEFAULT_ONNX_DIR = PRIOR_ONNX_DIR
_EXTERNAL_MIN_BYTES = 1024  # tensors smaller than this stay inside the graph


class _Encoder(nn.Module):
    """Image -> condition, and the static-flow field ``M`` as a second output when the model has one
    (computed once: the condition uses the same field)."""

    def __init__(self, denoiser: nn.Module) -> None:
        super().__init__()
        self.denoiser = denoiser

    def forward(self, image: torch.Tensor):
        flow = self.denoiser.static_field(image)
        if flow is None:
            return self.denoiser.encode_condition(image)
        return self.denoiser.encode_condition(image, flow), flow


class _Denoiser(nn.Module):
    def __init__(self, denoiser: nn.Module) -> None:
        super().__init__()
        self.denoiser = denoiser

    def forward(self, latents, timestep, freq_index, cond):
        return self.denoiser(latents, timestep, freq_index, cond)


class _Decoder(nn.Module):
    def __init__(self, vae: nn.Module, latent_scale: float) -> None:
        super().__init__()
        self.vae = vae
        self.latent_scale = float(latent_scale)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latents / self.latent_scale)


class _VaeEncoder(nn.Module):
    """Normalized slices -> scaled latents (posterior mode), for Eulerian-initialised sampling."""

    def __init__(self, vae: nn.Module, latent_scale: float) -> None:
        super().__init__()
        self.vae = vae
        self.latent_scale = float(latent_scale)

    def forward(self, normalized: torch.Tensor) -> torch.Tensor:
        return self.vae.encode(normalized).mode() * self.latent_scale


def _export(module: nn.Module, args: tuple, path: Path, names: tuple[str, list[str], list[str]],
            dynamic: dict[str, dict[int, str]]) -> None:
    _, inputs, outputs = names
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript exporter deprecation, tracer warnings on shape checks
        torch.onnx.export(module.eval(), args, str(path), dynamo=False, opset_version=OPSET,
                          input_names=inputs, output_names=outputs, dynamic_axes=dynamic,
                          do_constant_folding=True)


def _split_external(path: Path, max_bytes: int) -> list[str]:
    """If ``path`` is over ``max_bytes``, move its large tensors into ``<name>.data-0000i-of-0000N``
    files of at most ``max_bytes`` each (ONNX external data, offsets per tensor); returns the
    data file names (empty when the graph fits as it is)."""
    import onnx
    from onnx.external_data_helper import _get_all_tensors, set_external_data

    if path.stat().st_size <= max_bytes:
        return []
    model = onnx.load(str(path))
    tensors = [t for t in _get_all_tensors(model) if t.HasField("raw_data") and len(t.raw_data) >= _EXTERNAL_MIN_BYTES]
    groups: list[list[Any]] = [[]]
    used = 0
    for t in tensors:
        n = len(t.raw_data)
        if n > max_bytes:
            raise InputError(f"{path.name}: tensor {t.name} alone is {n} bytes, over the {max_bytes} byte file limit")
        if used + n > max_bytes and groups[-1]:
            groups.append([])
            used = 0
        groups[-1].append(t)
        used += n
    count = len(groups)
    names = [f"{path.name}.data-{i + 1:05d}-of-{count:05d}" for i in range(count)]
    for name, group in zip(names, groups):
        with open(path.parent / name, "wb") as fh:
            for t in group:
                offset = fh.tell()
                fh.write(t.raw_data)
                set_external_data(t, location=name, offset=offset, length=len(t.raw_data))
                t.ClearField("raw_data")
                t.data_location = onnx.TensorProto.EXTERNAL
    path.write_bytes(model.SerializeToString())
    return names


def export_prior_onnx(pipe, folder: Path = DEFAULT_ONNX_DIR, *, max_file_bytes: int = MAX_FILE_BYTES,
                      source: Optional[dict] = None, log: Optional[Callable[[str], None]] = None) -> dict:
    """Write ``pipe``'s (a ``MotionPriorPipeline``) four graphs and ``prior_onnx.json`` to
    ``folder`` atomically; returns the index."""
    import onnx

    from ...gid_engine import __version__

    folder = Path(folder)
    cfg = pipe.config
    k = cfg.num_frequencies
    h, w = cfg.latent_size
    c = cfg.vae.latent_channels
    den = pipe.denoiser.to("cpu").eval()
    vae = pipe.vae.to("cpu").eval()
    g = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, cfg.height, cfg.width, generator=g) * 2 - 1
    cond = den.encode_condition(image[:1]).detach()
    c_cond = cond.shape[1]
    latents = torch.randn(2 * k, c, h, w, generator=g)
    example = (latents, torch.full((2 * k,), 501, dtype=torch.long), torch.arange(k).repeat(2),
               torch.randn(2 * k, c_cond, h, w, generator=g))
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    with_flow = den.has_static_field
    encoder = (ENCODER[0], ENCODER[1], ENCODER[2] + ([FLOW_OUTPUT] if with_flow else []))
    graphs = [("encoder", encoder), ("denoiser", DENOISER), ("decoder", DECODER), ("vae_encoder", VAE_ENCODER)]
    try:
        with torch.no_grad():
            _export(_Encoder(den), (image,), tmp / ENCODER[0], encoder,
                    {name: {0: "n"} for name in encoder[1] + encoder[2]})
            _export(_Denoiser(den), example, tmp / DENOISER[0], DENOISER,
                    {name: {0: "n"} for name in DENOISER[1] + DENOISER[2]})
            _export(_Decoder(vae, pipe.latent_scale), (latents[:k],), tmp / DECODER[0], DECODER,
                    {"latents": {0: "n"}, "normalized": {0: "n"}})
            _export(_VaeEncoder(vae, pipe.latent_scale), (torch.randn(k, c, cfg.height, cfg.width, generator=g),),
                    tmp / VAE_ENCODER[0], VAE_ENCODER, {"normalized": {0: "n"}, "latents": {0: "n"}})
        models: dict[str, Any] = {}
        for key, (name, inputs, outputs) in graphs:
            data = _split_external(tmp / name, max_file_bytes)
            onnx.checker.check_model(str(tmp / name))
            models[key] = {"file": name, "inputs": inputs, "outputs": outputs, "external_data": data}
        models["denoiser"]["batch"] = f"a multiple of K={k}: K (no guidance) or 2K (conditional then null)"
        listing = list_files(tmp, sorted(f.name for f in tmp.iterdir()), MOTION_PRIOR_ONNX, max_file_bytes)
        norm = pipe.normalizer
        capabilities = ["onnx", "sample"] + (["eulerian_start"] if with_flow else [])
        index = make_index(
            MOTION_PRIOR_ONNX, capabilities, listing,
            gid_version=__version__,
            torch_version=torch.__version__,
            onnx_version=onnx.__version__,
            opset=OPSET,
            source=source or {},
            config=cfg.to_dict(),
            latent_scale=float(pipe.latent_scale),
            latent_scale_in_decoder=True,
            normalization={"scales": [float(s) for s in norm.scales], "percentile": float(norm.percentile),
                           "num_volumes": int(norm.num_volumes)},
            scheduler={key: jsonable(v) for key, v in dict(pipe.scheduler.config).items() if not key.startswith("_")},
            models=models,
        )
        write_index(tmp, MOTION_PRIOR_ONNX, index)
        publish_folder(tmp, folder)
        if log is not None:
            log(f"wrote {folder}: " + ", ".join(f"{e['name']} {e['bytes'] / 2**20:.1f} MiB" for e in listing))
        return index
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def export_prior_from_weights(weights_dir: Path, folder: Path = DEFAULT_ONNX_DIR,
                              log: Optional[Callable[[str], None]] = None) -> dict:
    """Load a (checksum-verified) weights folder and export it; the source index is recorded."""
    from .weights import INDEX_NAME, load_weights

    weights_dir = Path(weights_dir)
    pipe = load_weights(weights_dir, device="cpu")
    source = {"weights_index_sha256": sha256_file(weights_dir / INDEX_NAME), "model": pipe.config.name}
    return export_prior_onnx(pipe, folder, source=source, log=log)
