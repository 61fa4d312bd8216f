"""Live motion: the backward spectral volume a renderer evaluates at any frame, with no bake.

Blender's renderers warp by sampling: the output pixel ``q`` of frame ``t`` shows the still at
``q - b_t(q)``, where ``b_t`` is the *backward* field (the forward field splatted to where each
pixel lands, holes filled: what ``displacement_frames`` gives with a splatter, and what the
``disp_node_*.exr`` maps hold). Over one loop of the motion the backward fields are periodic too,
so a Fourier series over that period represents them; they carry harmonics the forward series
lacks (splatting is not linear), so they keep their own number of bins, chosen from the measured
error against the splatted fields.

``backward_volume`` computes the fields once per motion period at the motion's resolution and
keeps the first bins whose reconstruction stays within a tolerance; ``LiveVolume.field_at``
evaluates the series exactly as the shader node group does (tests compare them), and
``atlas`` lays the bins out as the one float image the node group samples. Frame 0 of the series
is exactly zero (the still), and frame ``T`` equals frame 0 (the loop is exact).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np

from .. import arguments
from ..errors import InputError
from ..motion.spectral_volume import SpectralVolume
from ..progress import Job, ensure_job
from .render import Splatter, field_splatter, prepare_motion

# The bins kept: the fewest (of BIN_STEPS) whose 99.9th-percentile error against the splatted fields
# is within the tolerance, in pixels of the motion. The largest errors sit on a few occlusion edges,
# where the splat switches which pixel wins; the percentile keeps them from asking for every bin.
if TYPE_CHECKING:
    from ..dynamics.modal import ModalBasis, ModalSimulator

DEFAULT_TOLERANCE_PX = 0.05
MAX_BINS = 64
BIN_STEPS = (8, 12, 16, 20, 24, 28, 32, 40, 48, 56, 64, 96, 128)
ATLAS_PAD = 1  # edge pixels repeated around each bin's tile, so linear sampling never reads a neighbour


@dataclass(frozen=True)
class LiveVolume:
    """The backward fields of one motion period as a truncated Fourier series.

    ``coeffs``: ``(M, 4, H, W)`` float32, per bin ``m`` the weighted complex coefficient of the
    backward field as (Re x, Im x, Re y, Im y) in pixels of the motion (x right, y down); the
    field at motion time ``tau`` (clip frames) is ``sum_m Re(C_m exp(2 pi i m tau / N))``.
    ``period``: ``N``, the clip frames of one loop; ``fps``: the clip's frame rate.
    """

    coeffs: np.ndarray
    period: int
    fps: float
    error_px: float  # largest |series - splatted field| over the period, in motion pixels
    mean_error_px: float
    extra: dict = field(default_factory=dict)

    @property
    def bins(self) -> int:
        return int(self.coeffs.shape[0])

    @property
    def width(self) -> int:
        return int(self.coeffs.shape[3])

    @property
    def height(self) -> int:
        return int(self.coeffs.shape[2])

    def field_at(self, tau: float) -> np.ndarray:
        """``(2, H, W)`` backward field at motion time ``tau`` (clip frames), as the shader sums it."""
        phase = 2.0 * np.pi * np.mod(float(tau) / self.period, 1.0) * np.arange(self.bins)
        cos, sin = np.cos(phase)[:, None, None], np.sin(phase)[:, None, None]
        c = self.coeffs.astype(np.float64)
        x = (c[:, 0] * cos - c[:, 1] * sin).sum(axis=0)
        y = (c[:, 2] * cos - c[:, 3] * sin).sum(axis=0)
        return np.stack([x, y]).astype(np.float32)

    def atlas(self) -> np.ndarray:
        """``(H + 2p, M * (W + 2p), 4)`` float32 image, row 0 at the top: bin ``m``'s tile at column
        ``m * (W + 2p) + p`` with its edges repeated ``p = ATLAS_PAD`` times."""
        tiles = [np.pad(c.transpose(1, 2, 0), ((ATLAS_PAD, ATLAS_PAD), (ATLAS_PAD, ATLAS_PAD), (0, 0)), mode="edge")
                 for c in self.coeffs]
        return np.ascontiguousarray(np.concatenate(tiles, axis=1), dtype=np.float32)


def forward_volume(sv: SpectralVolume, amplitude: float = 1.0) -> LiveVolume:
    """The forward series itself, exactly: where each point of the still is at motion time ``tau``
    (anchored, scaled by ``amplitude``). It moves geometry (a vertex at ``uv`` goes to
    ``uv + d``); pictures are warped by sampling, which needs ``backward_volume``."""
    native = sv.scaled(amplitude).anchored()
    weights = np.full(native.K, 2.0, np.float32)
    weights[0] = 1.0
    coeffs = native.coeffs * weights[:, None, None, None]
    return LiveVolume(np.ascontiguousarray(coeffs, dtype=np.float32), int(sv.num_frames), float(sv.fps), 0.0, 0.0,
                      {"amplitude": float(amplitude), "direction": "forward", "forward_bins": int(sv.K)})


def modal_volume(basis: "ModalBasis") -> LiveVolume:
    """The modes of interactive dynamics as a live volume: bin ``j`` holds ``mask * U_j`` as
    (Re x, Im x, Re y, Im y), so that ``sum_j Re(U_j q_j)``, the displacement of modal coordinates
    ``q``, is what the node group sums when its inputs are the keyframed ``q_j(t)``
    (``modal_coordinates``). Pictures warp by sampling with this forward field: exact where the
    motion is smooth at the scale of a pixel's displacement, as small poke responses are."""
    modes = np.asarray(basis.modes)
    if basis.mask is not None:
        modes = modes * basis.mask[None, None]
    coeffs = np.stack([modes[:, 0].real, modes[:, 0].imag, modes[:, 1].real, modes[:, 1].imag], axis=1)
    return LiveVolume(np.ascontiguousarray(coeffs, dtype=np.float32), 1, 1.0, 0.0, 0.0,
                      {"direction": "modal", "modes": int(basis.num_modes)})


def modal_coordinates(simulator: "ModalSimulator", pokes: Sequence, frames: Sequence[float]) -> np.ndarray:
    """``(len(frames), J)`` complex128: the simulation's modal coordinates ``q_j`` at each frame
    (deterministic per frame), what the node group's inputs are keyed to."""
    return np.stack([simulator.state_at(float(f), pokes)[0] for f in frames]) if len(frames) else np.zeros(
        (0, simulator.basis.num_modes), np.complex128)


def tau_at(frame: float, *, scene_fps: float, clip_fps: float, speed: float = 1.0, anchor_frame: float = 1.0,
           offset: float = 0.0) -> float:
    """Motion time (clip frames) at scene ``frame``: ``anchor_frame`` shows the still, ``speed``
    below 1 is slow motion, ``offset`` (seconds) shifts the motion in time. The node group's time."""
    return ((frame - anchor_frame) / scene_fps * speed + offset) * clip_fps


def backward_volume(sv: SpectralVolume, splatter: Splatter, *, amplitude: float = 1.0,
                    tolerance_px: float = DEFAULT_TOLERANCE_PX, max_bins: int = MAX_BINS,
                    job: Optional[Job] = None) -> LiveVolume:
    """The backward fields of one period of ``sv`` (anchored, scaled by ``amplitude``) as a
    Fourier series of the fewest bins whose 99.9th-percentile error is within ``tolerance_px``.

    Args:
        sv: the spectral volume (its own resolution is the live volume's).
        splatter: the splatter that makes backward fields (``render.make_splatter``).
        amplitude: the motion's amplitude (the node group scales the result linearly from here).
        tolerance_px: the largest error kept, in pixels of the motion.
        max_bins: the most bins kept (bins beyond it leave the error the result reports).
        job: progress and cancellation.

    Returns:
        The live volume, with its measured error.

    Raises:
        InputError: a bad argument.
        Cancelled: ``job`` was cancelled.
    """
    job = ensure_job(job)
    tolerance_px = arguments.number(tolerance_px, "tolerance_px", 0.0, 1e3)
    max_bins = arguments.integer(max_bins, "max_bins", 1, 1024)
    n = int(sv.num_frames)
    if n < 2:
        raise InputError(f"the motion has {n} frame per loop; live motion needs at least 2")
    prepared = prepare_motion(sv, sv.width, sv.height, amplitude, anchor=True, fit="stretch")
    splat = field_splatter(splatter)
    fields = np.empty((n, 2, sv.height, sv.width), np.float32)
    for j in range(n):
        job.check()
        forward = prepared.displacement_at(float(j))
        fields[j] = splat(forward, forward, prepared.z) if j else 0.0  # frame 0 is the still
        job.step(j + 1, n, "backward fields")
    spectrum = np.fft.rfft(fields.astype(np.float64), axis=0)  # (n//2 + 1, 2, H, W)
    limit = min(max_bins, spectrum.shape[0])
    chosen, errors = limit, (float("inf"), float("inf"), float("inf"))
    for m in [c for c in BIN_STEPS if c < limit] + [limit]:
        job.check()
        errors = _errors(spectrum, m, fields)
        if errors[1] <= tolerance_px:
            chosen = m
            break
    weights = np.full(chosen, 2.0 / n)
    weights[0] = 1.0 / n
    if chosen == spectrum.shape[0] and n % 2 == 0:
        weights[-1] = 1.0 / n  # the Nyquist bin is its own conjugate
    kept = spectrum[:chosen] * weights[:, None, None, None]
    kept[0] -= kept.real.sum(axis=0)  # sum_m Re(C_m) at tau = 0 becomes 0: frame 0 is the still
    coeffs = np.empty((chosen, 4, sv.height, sv.width), np.float32)
    coeffs[:, 0], coeffs[:, 1] = kept[:, 0].real, kept[:, 0].imag
    coeffs[:, 2], coeffs[:, 3] = kept[:, 1].real, kept[:, 1].imag
    return LiveVolume(coeffs, n, float(sv.fps), errors[0], errors[2],
                      {"amplitude": float(amplitude), "direction": "backward", "tolerance_px": float(tolerance_px),
                       "p999_error_px": errors[1], "forward_bins": int(sv.K)})


def _errors(spectrum: np.ndarray, bins: int, fields: np.ndarray) -> tuple[float, float, float]:
    """Largest, 99.9th-percentile and mean error of the first ``bins`` against ``fields``, with
    frame 0 pinned to the still as the live volume pins it."""
    cut = spectrum.copy()
    cut[bins:] = 0
    recon = np.fft.irfft(cut, n=fields.shape[0], axis=0)
    recon -= recon[0:1]
    err = np.abs(recon - fields)
    return float(err.max()), float(np.percentile(err, 99.9)), float(err.mean())
