"""The learned motion prior on numpy + onnxruntime: image -> spectral volume without torch.

Blender has no torch, so the shipped prior is also exported (``gid export-onnx --prior``) to graphs
in ``assets/motion_prior_onnx/``: the image-condition encoder, the frequency-coordinated denoiser
(batch = any multiple of K: all K frequency slices of a volume at once, 2K for conditional + null
together so classifier-free guidance is one call) and the VAE decoder (the ``1 / latent_scale``
division is inside it). A folder with the ``eulerian_start`` capability also has the VAE encoder
and the static-flow field as a second encoder output, for Eulerian-initialised sampling
(``eulerian_init.py``); one without it samples from noise only. ``prior_onnx.json`` is a
checksummed model-folder index (``model_folder.py``): config, normalizer scales, scheduler and
every file with its size and SHA-256; loading checks them all, so a missing or corrupt file is a
one-line error naming it.

Everything between the graphs is here in numpy and matches the torch ``MotionPriorPipeline``:
the same image preparation, DDIM exactly as diffusers' ``DDIMScheduler`` configured by
``make_scheduler`` (scaled-linear betas, "leading" spacing, ``steps_offset=1``,
``set_alpha_to_one=False``, eta 0, epsilon prediction), CFG, denormalization and anchoring. Given
the same initial noise both paths agree to float rounding (tested). Self-guidance needs gradients,
which onnxruntime lacks: ``loop=True`` instead projects the result onto the seamless-loop
constraints (``gid_engine/motion/loop_constraint.py``).

This module must never import torch or diffusers, not even indirectly: it only imports numpy,
onnxruntime and torch-free engine modules (a test checks ``sys.modules``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from ..errors import FormatError, InputError
from ..motion.normalization import FrequencyNormalizer
from ..progress import Job, ensure_job
from ..motion.spectral_volume import SpectralVolume
from ..model_folder import MOTION_PRIOR_ONNX, read_index

ONNX_INDEX_NAME = MOTION_PRIOR_ONNX.index_name
# graph file names and their input/output names (the exporter writes exactly these)
ENCODER = ("encoder.onnx", ["image"], ["cond"])  # + "flow" (the static-flow field M) when the model has one
DENOISER = ("denoiser.onnx", ["latents", "timestep", "freq_index", "cond"], ["eps"])
DECODER = ("decoder.onnx", ["latents"], ["normalized"])
# the VAE encoder for Eulerian-initialised sampling (folders with the "eulerian_start" capability)
VAE_ENCODER = ("vae_encoder.onnx", ["normalized"], ["latents"])
FLOW_OUTPUT = "flow"


# ----------------------------------------------------------------------------- image
def prepare_image_array(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``(H, W, C)`` float in [0, 1] (C = 1, 3 or 4) -> ``(1, 3, height, width)`` float32 in [-1, 1].

    The one image preparation of the prior: the torch pipeline's ``prepare_image`` wraps it.
    """
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3 or img.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an (H, W, 3) image, got shape {img.shape}")
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    img = np.clip(img[:, :, :3], 0.0, 1.0)
    if img.shape[:2] != (height, width):
        from ..media.imaging import resize_channels

        img = resize_channels(np.ascontiguousarray(img.transpose(2, 0, 1)), width, height).transpose(1, 2, 0)
    chw = np.ascontiguousarray(img.transpose(2, 0, 1))[None]
    return np.clip(chw * np.float32(2.0) - np.float32(1.0), -1.0, 1.0).astype(np.float32)


# ----------------------------------------------------------------------------- DDIM
@dataclass(frozen=True)
class NumpyDDIM:
    """diffusers' ``DDIMScheduler`` for the configuration ``make_scheduler`` builds, eta = 0.

    float32 throughout, in the same order of operations as diffusers, so the two agree to a few
    ulps. Other configurations (another beta schedule, spacing or prediction type) are refused.
    """

    alphas_cumprod: np.ndarray  # (num_train_timesteps,) float32
    final_alpha_cumprod: np.float32
    num_train_timesteps: int
    steps_offset: int

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> "NumpyDDIM":
        n = int(cfg.get("num_train_timesteps", 1000))
        expect = {"beta_schedule": "scaled_linear", "prediction_type": "epsilon", "timestep_spacing": "leading",
                  "clip_sample": False, "thresholding": False, "rescale_betas_zero_snr": False}
        for key, want in expect.items():
            if key in cfg and cfg[key] != want:
                raise FormatError(f"the ONNX prior supports scheduler {key}={want!r} only, got {cfg[key]!r}")
        if cfg.get("trained_betas") is not None:
            raise FormatError("the ONNX prior does not support trained_betas")
        lo, hi = float(cfg.get("beta_start", 0.00085)), float(cfg.get("beta_end", 0.012))
        # torch.linspace(lo**0.5, hi**0.5, n, dtype=float32) ** 2, then cumprod(1 - betas) in float32
        betas = np.linspace(lo**0.5, hi**0.5, n, dtype=np.float64).astype(np.float32) ** 2
        ac = np.cumprod(np.float32(1.0) - betas, dtype=np.float32)
        final = np.float32(1.0) if cfg.get("set_alpha_to_one", False) else ac[0]
        return cls(ac, np.float32(final), n, int(cfg.get("steps_offset", 0)))

    def timesteps(self, steps: int) -> np.ndarray:
        """The "leading" timesteps, descending (e.g. 50 steps: 981, 961, ..., 1)."""
        if not 1 <= steps <= self.num_train_timesteps:
            raise InputError(f"steps must be between 1 and {self.num_train_timesteps}, got {steps}")
        ratio = self.num_train_timesteps // steps
        return (np.arange(0, steps) * ratio).round()[::-1].astype(np.int64) + self.steps_offset

    def step(self, eps: np.ndarray, t: int, sample: np.ndarray, steps: int) -> np.ndarray:
        """``DDIMScheduler.step(eps, t, sample, eta=0).prev_sample``."""
        prev = t - self.num_train_timesteps // steps
        a_t = self.alphas_cumprod[t]
        a_prev = self.alphas_cumprod[prev] if prev >= 0 else self.final_alpha_cumprod
        one = np.float32(1.0)
        x0 = (sample - (one - a_t) ** np.float32(0.5) * eps) / a_t ** np.float32(0.5)
        direction = (one - a_prev) ** np.float32(0.5) * eps
        return (a_prev ** np.float32(0.5) * x0 + direction).astype(np.float32)


# ----------------------------------------------------------------------------- folder
def read_onnx_index(folder: Path) -> dict:
    """``prior_onnx.json`` of ``folder``, checked for format, version and keys (files not verified)."""
    return read_index(Path(folder), MOTION_PRIOR_ONNX, verify=False)


def verify_onnx_folder(folder: Path) -> dict:
    """The index of ``folder`` after checking every listed file's presence, size and SHA-256."""
    return read_index(Path(folder), MOTION_PRIOR_ONNX)


# ----------------------------------------------------------------------------- denoiser calls
class _DenoiserRunner:
    """One denoiser call per step. On the CPU a plain ``session.run``. With the CUDA provider an
    ``io_binding``: the inputs that are constant over the sampling loop (``cond``, ``freq_index``)
    are uploaded once as device ``OrtValue``s and the output is allocated on the device; the
    latents and timesteps (about 330 KB for 2K = 32 slices of 4x20x32) are copied per step,
    because the DDIM update between the calls is numpy. Any io-binding failure falls back to
    ``session.run`` (not exercised by the tests: no GPU on the development machine)."""

    def __init__(self, session: Any, provider: str, log: Optional[Callable[[str], None]] = None) -> None:
        self.session = session
        self.cuda = provider == "CUDAExecutionProvider"
        self.log = log
        self._feeds: dict[str, np.ndarray] = {}
        self._binding: Any = None

    def bind_constants(self, freq_index: np.ndarray, cond: np.ndarray) -> None:
        self._feeds = {"freq_index": freq_index, "cond": cond}
        self._binding = None
        if self.cuda:
            try:
                import onnxruntime as ort

                binding = self.session.io_binding()
                for name, arr in self._feeds.items():
                    binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(arr, "cuda", 0))
                binding.bind_output("eps", "cuda")
                self._binding = binding
            except Exception as exc:
                self._fallback(exc)

    def __call__(self, latents: np.ndarray, timestep: np.ndarray) -> np.ndarray:
        if self._binding is not None:
            try:
                self._binding.bind_cpu_input("latents", latents)
                self._binding.bind_cpu_input("timestep", timestep)
                self.session.run_with_iobinding(self._binding)
                return self._binding.copy_outputs_to_cpu()[0]
            except Exception as exc:
                self._fallback(exc)
        return self.session.run(["eps"], {"latents": latents, "timestep": timestep, **self._feeds})[0]

    def _fallback(self, exc: Exception) -> None:
        self._binding = None
        self.cuda = False
        if self.log is not None:
            self.log(f"CUDA io-binding failed ({str(exc).splitlines()[0][:120]}); copying through the host")


# ----------------------------------------------------------------------------- pipeline
class OnnxPriorPipeline:
    """Image -> spectral volume ``(K, 4, 160, 256)`` in pixels on onnxruntime (see module doc)."""

    def __init__(self, folder: Path, index: dict, sessions: dict[str, Any], provider: str,
                 log: Optional[Callable[[str], None]] = None) -> None:
        self.folder = Path(folder)
        self.index = index
        self.load_messages: list[str] = []  # what opening the sessions said (provider fallbacks)
        cfg = index["config"]
        self.config = cfg
        self.name = str(cfg.get("name", "?"))
        self.K = int(cfg["num_frequencies"])
        self.width, self.height = int(cfg["width"]), int(cfg["height"])
        self.fps, self.num_frames = float(cfg["fps"]), int(cfg["num_frames"])
        self.latent_channels = int(cfg["vae"]["latent_channels"])
        down = 2 ** (len(cfg["vae"]["block_out_channels"]) - 1)
        self.latent_size = (self.height // down, self.width // down)
        self.default_steps = int(cfg.get("default_steps", 50))
        self.guidance_scale = float(cfg.get("guidance_scale", 1.0))
        norm = index["normalization"]
        self.normalizer = FrequencyNormalizer(np.asarray(norm["scales"], dtype=np.float64),
                                              float(norm.get("percentile", 95.0)), int(norm.get("num_volumes", 0)))
        if self.normalizer.K != self.K:
            raise FormatError(f"ONNX prior: normalizer has K={self.normalizer.K}, model K={self.K}")
        self.scheduler = NumpyDDIM.from_config(index["scheduler"])
        self.sessions = sessions
        self.provider = provider
        self._denoise = _DenoiserRunner(sessions["denoiser"], provider, log)

    @classmethod
    def load(cls, folder: Path, device: str = "auto", threads: Optional[int] = None,
             log: Optional[Callable[[str], None]] = None) -> "OnnxPriorPipeline":
        """Verify ``folder`` (checksums) and open its graphs on ``device`` (auto, gpu, cpu)."""
        from ..runtime import create_session

        folder = Path(folder)
        index = verify_onnx_folder(folder)
        sessions: dict[str, Any] = {}
        provider = ""
        messages: list[str] = []
        keys = [("encoder", ENCODER), ("denoiser", DENOISER), ("decoder", DECODER)]
        if "vae_encoder" in index["models"]:
            keys.append(("vae_encoder", VAE_ENCODER))
        for key, (default_name, _, _) in keys:
            entry = index["models"].get(key)
            if not isinstance(entry, dict) or "file" not in entry:
                raise FormatError(f"ONNX prior file {ONNX_INDEX_NAME} is corrupt (no '{key}' model)")
            session, info = create_session(folder / entry["file"], device, threads, None)
            sessions[key] = session
            if key == "denoiser":
                provider = info.provider
            if info.message and info.message not in messages:
                messages.append(info.message)
        try:
            pipe = cls(folder, index, sessions, provider, None)
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"ONNX prior file {ONNX_INDEX_NAME} has an unreadable config ({exc})") from None
        pipe.load_messages = messages
        pipe.use_log(log)
        return pipe

    def use_log(self, log: Optional[Callable[[str], None]]) -> None:
        """Report to ``log`` from now on, starting with what loading said (a GPU that fell back to
        the CPU): a pipeline cached across calls tells each caller, not only the first."""
        self._denoise.log = log
        if log is not None:
            for message in self.load_messages:
                log(message)

    # ------------------------------------------------------------------ pieces
    def encode(self, image: np.ndarray) -> np.ndarray:
        """``(N, 3, H, W)`` in [-1, 1] -> condition features ``(N, C, h, w)``."""
        return self.sessions["encoder"].run(["cond"], {"image": np.ascontiguousarray(image, dtype=np.float32)})[0]

    @property
    def supports_eulerian_start(self) -> bool:
        """Whether ``init_strength`` < 1 can run: the export says it can (its encoder outputs the
        static-flow field and it has the VAE encoder)."""
        return "eulerian_start" in self.index["capabilities"] and "vae_encoder" in self.sessions

    def encode_with_field(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(N, 3, H, W)`` in [-1, 1] -> condition features and static-flow fields ``(N, 2, H, W)``,
        from one run of the encoder (the condition is computed from the same field)."""
        if not self.supports_eulerian_start:
            raise InputError(f"the ONNX prior in {self.folder} cannot start from the Eulerian field "
                             "(its index lacks the eulerian_start capability): re-export it with "
                             "gid export-onnx --prior, or use --init-strength 1 (in Blender: Variation 1)")
        cond, field = self.sessions["encoder"].run(["cond", FLOW_OUTPUT],
                                                   {"image": np.ascontiguousarray(image, dtype=np.float32)})
        return cond, field

    def encode_normalized(self, normalized: np.ndarray) -> np.ndarray:
        """``(K, 4, H, W)`` normalized volume -> scaled latents (the VAE posterior mode)."""
        return self.sessions["vae_encoder"].run(
            ["latents"], {"normalized": np.ascontiguousarray(normalized, dtype=np.float32)})[0]

    def eulerian_start(self, field: np.ndarray, noise: np.ndarray, t: int, seed: int) -> np.ndarray:
        """As the torch pipeline's: the volume of the static-flow ``field`` ``(2, H, W)``, encoded and
        noised to ``t`` (``eulerian_init.start_latents``)."""
        from .eulerian_init import start_latents

        return start_latents(field, self.normalizer, seed, self.fps, self.num_frames, self.encode_normalized, noise,
                             float(self.scheduler.alphas_cumprod[int(t)]))

    def decode_normalized(self, latents: np.ndarray) -> np.ndarray:
        """``(K, 4, h, w)`` scaled latents -> ``(K, 4, H, W)`` normalized volume."""
        return self.sessions["decoder"].run(
            ["normalized"], {"latents": np.ascontiguousarray(latents, dtype=np.float32)})[0]

    def initial_noise(self, seed: int) -> np.ndarray:
        h, w = self.latent_size
        rng = np.random.default_rng(int(seed))
        return rng.standard_normal((self.K, self.latent_channels, h, w), dtype=np.float32)

    # ------------------------------------------------------------------ sampling
    def __call__(self, image: np.ndarray, *, steps: Optional[int] = None, guidance_scale: Optional[float] = None,
                 seed: int = 0, noise: Optional[np.ndarray] = None, loop: bool = True,
                 job: Optional[Job] = None, init_strength: float = 1.0) -> SpectralVolume:
        """Sample a spectral volume (anchored: ``F(0) = 0``; seamless when ``loop``).

        ``noise`` ``(K, 4, h, w)`` replaces the initial latent draw (numpy ``default_rng(seed)``),
        e.g. to compare with the torch pipeline fed the same noise. The same seed gives a
        bit-identical volume on the same provider. ``init_strength`` < 1: Eulerian-initialised
        sampling, as in the torch pipeline.
        """
        from ..motion.loop_constraint import make_seamless, relative_change, seam_error
        from .eulerian_init import check_strength, truncated_timesteps

        job = ensure_job(job)
        steps = int(steps or self.default_steps)
        if steps < 1:
            raise InputError(f"steps must be >= 1, got {steps}")
        strength = check_strength(init_strength)
        w = float(guidance_scale) if guidance_scale is not None else self.guidance_scale
        k = self.K
        h, wl = self.latent_size
        if noise is None:
            z = self.initial_noise(seed)
        else:
            z = np.array(noise, dtype=np.float32)
            if z.shape != (k, self.latent_channels, h, wl):
                raise InputError(f"noise must have shape {(k, self.latent_channels, h, wl)}, got {z.shape}")
        # init_noise_sigma is 1 for DDIM
        img = prepare_image_array(image, self.width, self.height)
        batch = np.concatenate([img, np.zeros_like(img)]) if w else img
        field = None
        if strength < 1.0:  # the field comes from the same encoder run as the condition
            feats, fields = self.encode_with_field(batch)
            field = fields[0]
        else:
            feats = self.encode(batch)
        cond = np.repeat(feats[:1], k, axis=0)
        freq = np.arange(k, dtype=np.int64)
        if w:
            cond = np.concatenate([cond, np.repeat(feats[1:2], k, axis=0)])
            freq = np.concatenate([freq, freq])
        cond = np.ascontiguousarray(cond, dtype=np.float32)
        self._denoise.bind_constants(freq, cond)
        timesteps = [int(t) for t in self.scheduler.timesteps(steps)]
        if strength < 1.0:
            timesteps = truncated_timesteps(timesteps, strength)
            z = self.eulerian_start(field, z, timesteps[0], seed)
        job.check()
        for i, t in enumerate(timesteps):
            tt = np.full(len(freq), t, dtype=np.int64)
            eps = self._denoise(np.concatenate([z, z]) if w else z, tt)
            if w:
                eps = np.float32(1.0 + w) * eps[:k] - np.float32(w) * eps[k:]
            z = self.scheduler.step(eps, t, z, steps)
            job.step(i + 1, len(timesteps), "sampling motion")
        normalized = self.decode_normalized(z)
        coeffs = self.normalizer.denormalize(normalized)
        vol = SpectralVolume(coeffs, fps=self.fps, num_frames=self.num_frames, source="predicted").anchored()
        extra: dict[str, Any] = {
            "model": self.name, "seed": int(seed) if noise is None else None, "steps": steps,
            "guidance_scale": w, "self_guidance": False, "backend": "onnx", "provider": self.provider,
            "loop": bool(loop),
        }
        if strength < 1.0:
            extra["init_strength"] = strength
        if loop:  # the seam as sampled, and how much (relative L2) removing it changes the volume
            extra["seam_error_raw_px"] = round(seam_error(vol), 6)
            seamless = make_seamless(vol).anchored()  # anchoring again only tidies float rounding
            extra["loop_correction"] = round(relative_change(vol.coeffs, seamless.coeffs), 6)
            vol = seamless
        extra["seam_error_px"] = round(seam_error(vol), 6)
        return vol.replace(extra=extra)
