"""``gid selftest``: a corpus of bad inputs and faults, each run for real and checked.

Every case builds its bad input (a truncated PNG, a NaN-filled spectral volume, a full disk, a
cancel after frame 3, a failing GPU provider, ...) in a fresh temporary folder, runs the engine
the way a user does (``cli.main([...])`` with stdout and stderr captured at the file-descriptor
level, so C libraries printing behind Python's back are caught too) or, where no command reaches
it, through the engine API with the CLI's own mapping of exceptions to exit codes. What it
observes is compared with what the case expects:

* the exit code (2 for a user error, 130 for a cancel, 0 where the input must work);
* the message: for failures exactly one line ``gid: error: ...`` (or ``gid: cancelled...``),
  matching the case's pattern, no traceback, nothing else on stdout or stderr;
* nothing written: no new file or folder anywhere in the case's folder (staging folders and
  temp files included) unless the case expects output;
* nothing lost: every file that was there before (the inputs, the user's own files in the
  output folder) is still there, byte for byte.

The table (``gid selftest [--markdown]``) and ``tests/test_bad_inputs.py`` run the same
``CASES``, so they cannot disagree.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np

from ..gid_engine.repo_data import TREE_CLIP

EXIT_OK, EXIT_USER_ERROR, EXIT_CANCELLED = 0, 2, 130
_ERROR = r"^gid: error: "


def _err(pattern: str) -> str:
    """A one-line ``gid: error: ...`` message containing ``pattern`` (a regex)."""
    return _ERROR + r".*" + pattern


# ------------------------------------------------------------------------------------ records
@dataclass
class Observed:
    """What one engine call did."""

    code: Optional[int]
    stdout: str
    stderr: str
    written: list[str]  # paths (relative to the case folder) that appeared or changed
    lost: list[str]  # files that were there before and are gone or changed

    @property
    def lines(self) -> list[str]:
        return [ln for ln in (self.stdout + "\n" + self.stderr).splitlines() if ln.strip()]


@dataclass(frozen=True)
class Case:
    """One bad input or fault. ``build(sandbox)`` sets it up and runs the engine on it."""

    id: str
    input: str  # what the bad input is
    expected: str  # the behaviour the user should see
    build: Callable[["Sandbox"], None]
    code: int = EXIT_USER_ERROR
    message: str = _ERROR  # regex that the output (all lines joined) must match
    writes: bool = False  # True where the input must work and produce files

    @property
    def one_line(self) -> bool:
        return self.code != EXIT_OK


@dataclass
class Result:
    case: Case
    observed: Optional[Observed]  # the last engine call of the case
    failures: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)  # over all its engine calls
    lost: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def message(self) -> str:
        if self.observed is None:
            return ""
        return " / ".join(ln.strip() for ln in self.observed.lines)


# ------------------------------------------------------------------------------------ sandbox
class Sandbox:
    """A case's temporary folder, input builders and the instrumented engine calls."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.calls: list[Observed] = []
        self.notes: list[str] = []  # failed extra checks
        self._rng = np.random.default_rng(0)

    # ---- paths and checks
    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def inside(self, path: Path) -> Path:
        """Guard for every mutation a case makes: it must be inside the case folder."""
        resolved, root = Path(path).resolve(), self.root.resolve()
        if resolved != root and root not in resolved.parents:
            raise RuntimeError(f"selftest refuses to modify {path}: outside its temporary folder")
        return Path(path)

    def check(self, ok: bool, note: str) -> None:
        if not ok:
            self.notes.append(note)

    def write(self, name: str, data: bytes) -> Path:
        p = self.inside(self.path(name))
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        return p

    def user_files(self, folder: str, names: Sequence[str]) -> Path:
        """The user's own files in ``folder`` (distinct bytes each), to be kept intact."""
        d = self.inside(self.path(folder))
        d.mkdir(parents=True, exist_ok=True)
        for n in names:
            (d / n).write_bytes(f"the user's own {n}, not to be touched\n".encode() + os.urandom(16))
        return d

    # ---- inputs
    def texture(self, h: int, w: int, channels: int = 3) -> np.ndarray:
        """A smooth float32 texture in [0, 1] with an edge, so motion is visible."""
        from ..exporters.opencv import cv2

        noise = self._rng.random((h, w, channels)).astype(np.float32)
        img = cv2.GaussianBlur(noise, (0, 0), 1.2).reshape(h, w, channels)
        img = (img - img.min()) / (img.max() - img.min() + 1e-6)
        img[h // 3, :, :] = 0.05
        return img

    def still(self, name: str = "still.png", w: int = 24, h: int = 16) -> Path:
        from ..exporters.opencv import cv2

        p = self.inside(self.path(name))
        ok, buf = cv2.imencode(".png", (self.texture(h, w) * 255 + 0.5).astype(np.uint8))
        assert ok
        p.write_bytes(buf.tobytes())
        return p

    def motion_volume(self, w: int = 24, h: int = 16):
        from ..gid_engine.motion.spectral_volume import SpectralVolume

        decay = np.exp(-0.5 * np.arange(16, dtype=np.float32))[:, None, None, None]
        coeffs = (self._rng.normal(size=(16, 4, h, w)) * 0.6 * decay).astype(np.float32)
        coeffs[0, 1] = coeffs[0, 3] = 0.0
        return SpectralVolume(coeffs, fps=30.0, num_frames=150, source="selftest")

    def motion(self, name: str = "motion.gidsv", w: int = 24, h: int = 16) -> Path:
        from ..gid_engine.motion.sv_file import save_spectral_volume

        return save_spectral_volume(self.motion_volume(w, h), self.inside(self.path(name)))

    def raw_gidsv(self, name: str, coeffs: np.ndarray, **meta_overrides: Any) -> Path:
        """A ``.gidsv`` written byte by byte (the real writer refuses bad arrays)."""
        coeffs = np.ascontiguousarray(coeffs)
        meta = {"fps": 30.0, "num_frames": 150, "source": "selftest", "format": "gid.spectral_volume",
                "version": 1, "shape": list(coeffs.shape), "sha256": hashlib.sha256(coeffs.tobytes()).hexdigest()}
        meta.update(meta_overrides)
        buf = io.BytesIO()
        np.savez(buf, coeffs=coeffs, metadata=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
        return self.write(name, buf.getvalue())

    def clip(self, name: str = "clip.avi", frames: int = 40, fps: float = 8.0, w: int = 32, h: int = 24) -> Path:
        """A small MJPG video of a texture drifting sideways and back."""
        from ..exporters.opencv import cv2

        p = self.inside(self.path(name))
        base = self.texture(h, w + 8)
        writer = cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
        if not writer.isOpened():
            raise RuntimeError("OpenCV cannot write an MJPG video here")
        for i in range(frames):
            x = int(round(4 + 3 * np.sin(2 * np.pi * i / max(frames, 2) * 2)))
            writer.write((base[:, x : x + w] * 255 + 0.5).astype(np.uint8))
        writer.release()
        return p

    def clip_switching_size(self, name: str = "switch.avi", switch_at: int = 20, frames: int = 40) -> Path:
        """An MJPG AVI whose frames are 32x24 up to ``switch_at`` and 16x12 after (as a concatenation of
        two recordings is): the AVI is assembled here from two OpenCV-written clips' JPEG frames."""
        import struct

        first = self.clip("a.avi", frames=switch_at, fps=8.0, w=32, h=24)
        second = self.clip("b.avi", frames=frames - switch_at, fps=8.0, w=16, h=12)
        header, jpegs = _avi_jpegs(first.read_bytes())
        jpegs += _avi_jpegs(second.read_bytes())[1]
        first.unlink()
        second.unlink()
        movi = b"".join(b"00dc" + struct.pack("<I", len(j)) + j + b"\0" * (len(j) & 1) for j in jpegs)
        index, offset = [], 4
        for j in jpegs:
            index.append(b"00dc" + struct.pack("<III", 0x10, offset, len(j)))
            offset += 8 + len(j) + (len(j) & 1)
        body = (b"AVI " + header + b"LIST" + struct.pack("<I", 4 + len(movi)) + b"movi" + movi
                + b"idx1" + struct.pack("<I", 16 * len(index)) + b"".join(index))
        return self.write(name, b"RIFF" + struct.pack("<I", len(body)) + body)

    def sequence(self, folder: str, frames: int, w: int = 16, h: int = 12) -> Path:
        from ..exporters.opencv import cv2

        d = self.inside(self.path(folder))
        d.mkdir(parents=True, exist_ok=True)
        for i in range(frames):
            frame = np.roll(self.texture(h, w), i, axis=1)
            cv2.imwrite(str(d / f"frame_{i + 1:04d}.png"), (frame * 255).astype(np.uint8))
        return d

    # ---- engine calls
    def cli(self, *args: str) -> Observed:
        """``gid ARGS`` in this process, exactly as the command line runs it."""
        from ..gid_engine.cli import main

        def run() -> int:
            try:
                return main([str(a) for a in args])
            except SystemExit as exc:  # argparse
                return exc.code if isinstance(exc.code, int) else EXIT_USER_ERROR

        return self._observe(run)

    def api(self, fn: Callable[[], Any]) -> Observed:
        """An engine call no command reaches, its exceptions mapped to exit codes as the CLI does."""

        def run() -> int:
            fn()
            return EXIT_OK

        return self._observe(lambda: _as_cli(run))

    def _observe(self, run: Callable[[], int]) -> Observed:
        before = _snapshot(self.root)
        with _quiet_env(), _captured() as out:
            code = run()
        after = _snapshot(self.root)
        written = sorted(p for p, h in after.items() if before.get(p) != h)
        lost = sorted(p for p, h in before.items() if h != "dir" and after.get(p) != h)
        obs = Observed(code, out["stdout"], out["stderr"], written, lost)
        self.calls.append(obs)
        return obs


def _as_cli(run: Callable[[], int]) -> int:
    """The mapping ``cli.main`` applies, for engine calls made directly."""
    from ..gid_engine.cli import run_reporting

    return run_reporting(run)


def _snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` (hidden ones too): a file's SHA-256, "dir", or "special" (a FIFO)."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root)] = "dir"
        for f in filenames:
            p = os.path.join(dirpath, f)
            if not os.path.isfile(p):  # a FIFO or device: opening it could block; its name is enough
                out[os.path.relpath(p, root)] = "special"
                continue
            h = hashlib.sha256()
            try:
                with open(p, "rb") as fh:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        h.update(chunk)
                out[os.path.relpath(p, root)] = h.hexdigest()
            except OSError:
                out[os.path.relpath(p, root)] = "unreadable"
    return out


@contextlib.contextmanager
def _quiet_env() -> Iterator[None]:
    """No progress bars and no re-raised tracebacks: the user's default CLI behaviour."""
    saved = {k: os.environ.pop(k) for k in ("GID_DEBUG", "GID_PROGRESS") if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


@contextlib.contextmanager
def _captured() -> Iterator[dict[str, str]]:
    """stdout/stderr of Python *and* of C libraries (file descriptors 1 and 2)."""
    result = {"stdout": "", "stderr": ""}
    py_out, py_err = io.StringIO(), io.StringIO()
    with tempfile.TemporaryFile() as f_out, tempfile.TemporaryFile() as f_err:
        for s in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                s.flush()
        saved_fds = os.dup(1), os.dup(2)
        saved_py = sys.stdout, sys.stderr
        os.dup2(f_out.fileno(), 1)
        os.dup2(f_err.fileno(), 2)
        sys.stdout, sys.stderr = py_out, py_err
        try:
            yield result
        finally:
            sys.stdout, sys.stderr = saved_py
            os.dup2(saved_fds[0], 1)
            os.dup2(saved_fds[1], 2)
            os.close(saved_fds[0])
            os.close(saved_fds[1])
            f_out.seek(0)
            f_err.seek(0)
            result["stdout"] = py_out.getvalue() + f_out.read().decode("utf-8", "replace")
            result["stderr"] = py_err.getvalue() + f_err.read().decode("utf-8", "replace")


@contextlib.contextmanager
def _patched(obj: Any, name: str, value: Any) -> Iterator[None]:
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


# ------------------------------------------------------------------------------------ helpers
def _avi_jpegs(data: bytes) -> tuple[bytes, list[bytes]]:
    """An AVI's header list (``LIST hdrl``) and its frames' bytes (the ``movi`` list's ``##dc`` chunks)."""
    import struct

    def chunks(start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
        i = start
        while i + 8 <= end:
            kind, size = data[i : i + 4], struct.unpack("<I", data[i + 4 : i + 8])[0]
            yield kind, i, size
            i += 8 + size + (size & 1)

    header, frames = b"", []
    for kind, i, size in chunks(12, len(data)):
        if kind == b"LIST" and data[i + 8 : i + 12] == b"hdrl":
            header = data[i : i + 8 + size]
        elif kind == b"LIST" and data[i + 8 : i + 12] == b"movi":
            frames = [data[j + 8 : j + 8 + n] for k, j, n in chunks(i + 12, i + 8 + size) if k[2:] == b"dc"]
    return header, frames


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")


def _huge_png_header(width: int, height: int) -> bytes:
    """A valid PNG signature + IHDR claiming ``width`` x ``height`` (a few bytes of pixels)."""
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _png_chunk(b"IEND", b""))


def _read_unchanged(path: Path) -> Optional[np.ndarray]:
    from ..exporters.opencv import cv2

    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


RENDER = ("--frames", "4", "--renderer", "splat")  # tiny and deterministic whatever else is installed


def _render(sb: Sandbox, image: Path, motion: Path, out: str = "out", *more: str) -> Observed:
    return sb.cli("render", image, "--motion", motion, "-o", sb.path(out), *RENDER, *more)


def _sidecar(sb: Sandbox, out: str = "out", name: str = "frame.json") -> dict:
    p = sb.path(out, name)
    return json.loads(p.read_text()) if p.is_file() else {}


# ------------------------------------------------------------------------------------ images
def _image_missing(sb: Sandbox) -> None:
    _render(sb, sb.path("no_such_still.png"), sb.motion())


def _image_empty(sb: Sandbox) -> None:
    _render(sb, sb.write("empty.png", b""), sb.motion())


def _image_truncated(sb: Sandbox) -> None:
    data = sb.still("full.png", 64, 48).read_bytes()
    _render(sb, sb.write("truncated.png", data[: len(data) // 2]), sb.motion(w=64, h=48))


def _image_corrupt(sb: Sandbox) -> None:
    _render(sb, sb.write("noise.png", np.random.default_rng(1).bytes(4096)), sb.motion())


def _image_folder(sb: Sandbox) -> None:
    d = sb.path("a_folder.png")
    d.mkdir()
    _render(sb, d, sb.motion())


def _image_1x1(sb: Sandbox) -> None:
    from ..exporters.opencv import cv2

    p = sb.path("pixel.png")
    cv2.imwrite(str(p), np.full((1, 1, 3), 128, np.uint8))
    obs = _render(sb, p, sb.motion(w=8, h=8))
    frames = sorted(sb.path("out").glob("frame_*.png")) if obs.code == 0 else []
    sb.check(len(frames) == 4, f"expected 4 frames, found {len(frames)}")
    for f in frames[:1]:
        img = _read_unchanged(f)
        sb.check(img is not None and img.shape[:2] == (1, 1), "frames are not 1x1")


def _image_huge(sb: Sandbox) -> None:
    p = sb.write("huge.png", _huge_png_header(20000, 20000))
    sb.check(p.stat().st_size < 200, "the crafted file should be tiny")
    _render(sb, p, sb.motion(w=24, h=24))


def _image_16bit(sb: Sandbox) -> None:
    from ..exporters.opencv import cv2

    src = (sb.texture(16, 24) * 65535).astype(np.uint16) | 1  # odd values: 8 bits would lose them
    p = sb.path("deep.png")
    cv2.imwrite(str(p), src)
    obs = _render(sb, p, sb.motion(), "out", "--depth", "16")
    if obs.code == 0:
        first = _read_unchanged(sb.path("out", "frame_0001.png"))
        sb.check(first is not None and first.dtype == np.uint16, "output is not 16-bit")
        if first is not None and first.dtype == np.uint16:
            diff = int(np.abs(first.astype(np.int64) - src.astype(np.int64)).max())
            sb.check(diff <= 2, f"frame 1 differs from the 16-bit still by {diff}/65535")
        sb.check(_sidecar(sb).get("params", {}).get("image", {}).get("bit_depth") == 16, "sidecar bit_depth != 16")


def _image_exr(sb: Sandbox) -> None:
    from ..exporters.opencv import cv2

    src = (sb.texture(16, 24) * 4.0).astype(np.float32)  # scene-linear, above 1
    p = sb.path("linear.exr")
    sb.check(bool(cv2.imwrite(str(p), src)), "OpenCV could not write the EXR input")
    obs = _render(sb, p, sb.motion(), "out", "--format", "exr", "--depth", "float")
    if obs.code == 0:
        first = _read_unchanged(sb.path("out", "frame_0001.exr"))
        ok = first is not None and first.dtype == np.float32 and first.shape[:2] == (16, 24)
        sb.check(ok, "output EXR unreadable or not float")
        if ok:
            err = float(np.abs(first[:, :, :3] - src).max())
            sb.check(err < 1e-3, f"frame 1 differs from the linear still by {err:.4f} (values > 1 lost?)")
        sb.check(_sidecar(sb).get("params", {}).get("image", {}).get("linear") is True, "sidecar does not say linear")


def _image_rgba(sb: Sandbox) -> None:
    from ..exporters.opencv import cv2

    rgb = (sb.texture(16, 24) * 255).astype(np.uint8)
    alpha = np.tile(np.linspace(0, 255, 24).astype(np.uint8), (16, 1))
    p = sb.path("cutout.png")
    cv2.imwrite(str(p), np.dstack([rgb, alpha]))
    obs = _render(sb, p, sb.motion())
    if obs.code == 0:
        first = _read_unchanged(sb.path("out", "frame_0001.png"))
        last = _read_unchanged(sb.path("out", "frame_0004.png"))
        sb.check(first is not None and first.ndim == 3 and first.shape[2] == 4, "output has no alpha channel")
        if first is not None and first.ndim == 3 and first.shape[2] == 4:
            d = int(np.abs(first[:, :, 3].astype(int) - alpha.astype(int)).max())
            sb.check(d <= 1, f"frame 1 alpha differs from the still's by {d}")
        sb.check(last is not None and last.ndim == 3 and last.shape[2] == 4, "later frames lost the alpha channel")


def _image_gray(sb: Sandbox) -> None:
    from ..exporters.opencv import cv2

    p = sb.path("gray.png")
    cv2.imwrite(str(p), (sb.texture(16, 24, 1)[:, :, 0] * 255).astype(np.uint8))
    obs = _render(sb, p, sb.motion())
    if obs.code == 0:
        first = _read_unchanged(sb.path("out", "frame_0001.png"))
        ok = first is not None and (first.ndim == 2 or np.ptp(first[:, :, :3].astype(int), axis=2).max() <= 1)
        sb.check(ok, "frame 1 of a gray still is not gray")


def _pil_case(sb: Sandbox, name: str, mode: str, tol: float) -> None:
    from PIL import Image

    from ..exporters.opencv import cv2

    rgb = (sb.texture(16, 24) * 255).astype(np.uint8)
    p = sb.path(name)
    im = Image.fromarray(rgb, "RGB").convert(mode)
    im.save(p)
    with Image.open(p) as reread:
        sb.check(reread.mode == mode, f"Pillow wrote mode {reread.mode}, not {mode}")
        expected = np.asarray(reread.convert("RGB")).astype(np.float32) / 255 if mode == "P" else rgb / 255.0
    obs = _render(sb, p, sb.motion())
    if obs.code == 0:
        first = _read_unchanged(sb.path("out", "frame_0001.png"))
        if first is not None:
            got = cv2.cvtColor(first[:, :, :3], cv2.COLOR_BGR2RGB).astype(np.float32) / 255
            err = float(np.abs(got - expected).mean())
            sb.check(err <= tol, f"colours of frame 1 are off by {err:.3f} on average")


def _image_palette(sb: Sandbox) -> None:
    _pil_case(sb, "indexed.png", "P", 0.01)


def _image_cmyk(sb: Sandbox) -> None:
    _pil_case(sb, "print.jpg", "CMYK", 0.06)


def _image_nan_exr(sb: Sandbox) -> None:
    from ..exporters.opencv import cv2

    src = sb.texture(16, 24).astype(np.float32)
    src[3, 4] = np.nan
    p = sb.path("nan.exr")
    sb.check(bool(cv2.imwrite(str(p), src)), "OpenCV could not write the EXR input")
    _render(sb, p, sb.motion())


# ------------------------------------------------------------------------------------ videos
def _extract(sb: Sandbox, source: Path, *more: str, out: str = "motion.gidsv") -> Observed:
    return sb.cli("extract", source, "-o", sb.path(out), "--size", "16x12", *more)


def _video_missing(sb: Sandbox) -> None:
    _extract(sb, sb.path("no_such_clip.mp4"))


def _video_empty(sb: Sandbox) -> None:
    _extract(sb, sb.write("empty.mp4", b""))


def _video_corrupt(sb: Sandbox) -> None:
    _extract(sb, sb.write("noise.avi", np.random.default_rng(2).bytes(8192)))


def _video_one_frame(sb: Sandbox) -> None:
    _extract(sb, sb.clip("one.avi", frames=1))


def _video_too_short(sb: Sandbox) -> None:
    _extract(sb, sb.clip("short.avi", frames=4, fps=8.0))


def _sequence_without_fps(sb: Sandbox) -> None:
    _extract(sb, sb.sequence("frames", 10))


def _extract_fps_zero(sb: Sandbox) -> None:
    _extract(sb, sb.sequence("frames", 10), "--fps", "0")


def _video_variable_rate(sb: Sandbox) -> None:
    clip = sb.inside(sb.path("tree.avi"))
    shutil.copyfile(TREE_CLIP, clip)
    obs = _extract(sb, clip)
    if obs.code == 0:
        from ..gid_engine.motion.sv_file import load_spectral_volume

        sv = load_spectral_volume(sb.path("motion.gidsv"))
        sb.check(sv.coeffs.shape == (16, 4, 12, 16), f"unexpected volume shape {sv.coeffs.shape}")
        sb.check(sv.extra.get("timing") == "timestamps", "container timestamps were not used")
        sb.check(float(np.abs(sv.coeffs[1:]).max()) > 0, "no motion extracted")


# ------------------------------------------------------------------------------------ motion files
def _motion_missing(sb: Sandbox) -> None:
    _render(sb, sb.still(), sb.path("no_such_motion.gidsv"))


def _motion_empty(sb: Sandbox) -> None:
    sb.cli("info", sb.write("empty.gidsv", b""))


def _motion_not_gidsv(sb: Sandbox) -> None:
    sb.cli("info", sb.write("picture.gidsv", sb.still().read_bytes()))


def _motion_wrong_shape(sb: Sandbox) -> None:
    sb.cli("info", sb.raw_gidsv("three_channels.gidsv", np.zeros((16, 3, 8, 12), np.float32)))


def _motion_nan(sb: Sandbox) -> None:
    sb.cli("info", sb.raw_gidsv("nan.gidsv", np.full((16, 4, 8, 12), np.nan, np.float32)))


def _motion_truncated(sb: Sandbox) -> None:
    data = sb.motion("full.gidsv").read_bytes()
    _render(sb, sb.still(), sb.write("truncated.gidsv", data[: int(len(data) * 0.6)]))


def _motion_bitflip(sb: Sandbox) -> None:
    data = bytearray(sb.motion("good.gidsv").read_bytes())
    data[len(data) // 2] ^= 0x40  # inside the stored coefficients: the zip CRC no longer matches
    _render(sb, sb.still(), sb.write("flipped.gidsv", bytes(data)))


def _motion_bad_sha(sb: Sandbox) -> None:
    coeffs = sb.motion_volume(12, 8).coeffs
    sb.cli("info", sb.raw_gidsv("tampered.gidsv", coeffs, sha256="0" * 64))


def _motion_future(sb: Sandbox) -> None:
    coeffs = sb.motion_volume(12, 8).coeffs
    sb.cli("info", sb.raw_gidsv("future.gidsv", coeffs, version=99))


def _motion_aspect(sb: Sandbox) -> None:
    _render(sb, sb.still(w=24, h=16), sb.motion(w=16, h=16))


def _displace_corrupt_motion(sb: Sandbox) -> None:
    sb.cli("displace", sb.still(), "--motion", sb.write("noise.gidsv", b"PK\x03\x04" + os.urandom(300)),
           "-o", sb.path("maps"), "--frames", "2")


# ------------------------------------------------------------------------------------ numbers
def _render_frames_zero(sb: Sandbox) -> None:
    sb.cli("render", sb.still(), "--motion", sb.motion(), "-o", sb.path("out"), "--frames", "0")


def _render_fps_zero(sb: Sandbox) -> None:
    _render(sb, sb.still(), sb.motion(), "out", "--fps", "0")


def _render_amplitude_nan(sb: Sandbox) -> None:
    _render(sb, sb.still(), sb.motion(), "out", "--amplitude", "nan")


# ------------------------------------------------------------------------------------ outputs
def _output_not_writable(sb: Sandbox) -> None:
    """A read-only folder; where permissions do not bind (root), an output whose parent is a file."""
    locked = sb.path("locked")
    locked.mkdir()
    locked.chmod(0o500)
    probe = locked / "probe"
    try:
        probe.write_bytes(b"")
        probe.unlink()
        binds = False
    except OSError:
        binds = True
    if binds:
        try:
            _render(sb, sb.still(), sb.motion(), "locked/out")
        finally:
            locked.chmod(0o700)
    else:
        locked.chmod(0o700)
        sb.write("a_file", b"the user's file, not a folder\n")
        _render(sb, sb.still(), sb.motion(), "a_file/out")


def _output_is_file(sb: Sandbox) -> None:
    sb.write("out", b"the user's notes, not a folder\n")
    _render(sb, sb.still(), sb.motion(), "out")


def _output_has_user_files(sb: Sandbox) -> None:
    sb.user_files("out", ["frame_0002.png", "frame.json", "notes.txt"])
    _render(sb, sb.still(), sb.motion(), "out")


def _output_has_user_preview(sb: Sandbox) -> None:
    sb.user_files("out", ["frame_preview.gif"])
    _render(sb, sb.still(), sb.motion(), "out", "--preview", "gif")


def _gif_parent_is_file(sb: Sandbox) -> None:
    sb.write("a_file", b"the user's file, not a folder\n")
    _render(sb, sb.still(), sb.motion(), "a_file/out", "--format", "gif")


def _extract_output_exists(sb: Sandbox) -> None:
    sb.user_files(".", ["motion.gidsv"])
    _extract(sb, sb.clip())


def _disk_full_on_nth_write(n: int, match: str = "") -> Callable[[Path, bytes], None]:
    from ..exporters import atomic

    real, calls = atomic.write_file, []

    def flaky(path: Path, data: bytes) -> None:
        calls.append(path)
        if (match and match in Path(path).name) or (not match and len(calls) == n):
            real(path, data[: len(data) // 2])  # a partial file is on disk when the error comes
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    return flaky


def _disk_full_sequence(sb: Sandbox) -> None:
    from ..exporters import atomic

    sb.user_files("out", ["take1_0001.png", "take1_0002.png", "take1.json"])  # an earlier render
    still, motion = sb.still(), sb.motion()
    with _patched(atomic, "write_file", _disk_full_on_nth_write(3)):
        _render(sb, still, motion, "out", "--prefix", "take2")


def _disk_full_preview(sb: Sandbox) -> None:
    from ..exporters import atomic

    still, motion = sb.still(), sb.motion()
    with _patched(atomic, "write_file", _disk_full_on_nth_write(0, match="preview")):
        _render(sb, still, motion, "out", "--preview", "gif")


def _disk_full_motion_file(sb: Sandbox) -> None:
    from ..exporters import atomic

    clip = sb.clip()
    with _patched(atomic, "write_file", _disk_full_on_nth_write(1)):
        _extract(sb, clip)


def _cancelling_job(after: int, how: str):
    """A stand-in for ``cli.progress_job`` whose Job cancels (or gets Ctrl-C) after frame ``after``."""
    from ..gid_engine.progress import Job

    def factory(enabled: bool = True):
        def progress(done: int, total: int, what: str) -> None:
            if done >= after:
                if how == "ctrl-c":
                    raise KeyboardInterrupt
                job.cancel()

        job = Job(progress)
        return job, lambda: None

    return factory


def _cancel(sb: Sandbox, how: str, *more: str) -> None:
    from ..gid_engine import cli

    sb.user_files("out", ["notes.txt"])
    with _patched(cli, "progress_job", _cancelling_job(3, how)):
        sb.cli("render", sb.still(), "--motion", sb.motion(), "-o", sb.path("out"), "--frames", "8",
               "--renderer", "splat", *more)


def _cancel_after_3(sb: Sandbox) -> None:
    _cancel(sb, "cancel")


def _ctrl_c_after_3(sb: Sandbox) -> None:
    _cancel(sb, "ctrl-c")


def _cancel_gif(sb: Sandbox) -> None:
    from ..gid_engine import cli

    with _patched(cli, "progress_job", _cancelling_job(3, "cancel")):
        sb.cli("render", sb.still(), "--motion", sb.motion(), "-o", sb.path("new_folder"), "--frames", "8",
               "--renderer", "splat", "--format", "gif")


# ------------------------------------------------------------------------------------ files lost
def _extract_over_its_video(sb: Sandbox) -> None:
    clip = sb.clip()
    sb.cli("extract", clip, "-o", clip, "--size", "16x12", "--overwrite")


def _render_over_a_hard_link_of_the_still(sb: Sandbox) -> None:
    still = sb.still()
    out = sb.inside(sb.path("out"))
    out.mkdir()
    os.link(still, out / "frame_0001.png")  # the same file under the name a frame would take
    _render(sb, still, sb.motion(), "out", "--overwrite")


# ------------------------------------------------------------------------------------ runaway work
def _render_half_a_million_frames(sb: Sandbox) -> None:
    sb.cli("render", sb.still(), "--motion", sb.motion(), "-o", sb.path("out"), "--slowmo", "100", "--fps", "1000")


def _motion_endless_loop(sb: Sandbox) -> None:
    coeffs = sb.motion_volume().coeffs
    sb.cli("render", sb.still(), "--motion", sb.raw_gidsv("m.gidsv", coeffs, num_frames=3_000_000), "-o",
           sb.path("out"))


def _motion_fps_tiny(sb: Sandbox) -> None:
    coeffs = sb.motion_volume().coeffs
    sb.cli("displace", sb.still(), "--motion", sb.raw_gidsv("m.gidsv", coeffs, fps=1e-7), "-o", sb.path("out"))


def _displace_huge_size(sb: Sandbox) -> None:
    sb.cli("displace", sb.still(), "--motion", sb.motion(), "-o", sb.path("out"), "--size", "20000x15000",
           "--fit", "stretch")


def _extract_huge_size(sb: Sandbox) -> None:
    _extract(sb, sb.clip(), "--size", "8192x8192")


def _extract_below_flow_minimum(sb: Sandbox) -> None:
    _extract(sb, sb.clip(), "--size", "1x1")


def _predict_panorama(sb: Sandbox) -> None:
    sb.cli("predict", sb.still("pano.png", w=2000, h=10), "-o", sb.path("p.gidsv"), "--steps", "1")


def _jpeg_bomb(sb: Sandbox) -> None:
    from ..exporters.opencv import cv2

    ok, data = cv2.imencode(".jpg", np.full((16, 16, 3), 200, np.uint8))
    data = bytearray(data.tobytes())
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = (20000).to_bytes(2, "big") * 2  # height, width: 20000 each
    _render(sb, sb.write("bomb.jpg", bytes(data)), sb.motion(), "out")


def _motion_compressed(sb: Sandbox) -> None:
    vol = sb.motion_volume()
    buf = io.BytesIO()  # a zip bomb's way in: compressed members, which gid never writes
    meta = json.dumps({"fps": 30.0, "num_frames": 150, "format": "gid.spectral_volume", "version": 1,
                       "shape": list(vol.coeffs.shape), "sha256": hashlib.sha256(vol.coeffs.tobytes()).hexdigest()})
    np.savez_compressed(buf, coeffs=vol.coeffs, metadata=np.frombuffer(meta.encode(), dtype=np.uint8))
    sb.cli("info", sb.write("m.gidsv", buf.getvalue()))


def _motion_fifo(sb: Sandbox) -> None:
    path = sb.inside(sb.path("m.gidsv"))
    if hasattr(os, "mkfifo"):
        os.mkfifo(path)
    else:  # Windows has no FIFOs; a folder is refused by the same check
        path.mkdir()
    _render(sb, sb.still(), path, "out")


# ------------------------------------------------------------------------------------ signals
def _signal_after_3(sb: Sandbox, name: str) -> None:
    """A termination signal delivered while frames are staged, as ``kill`` or a closed terminal would."""
    import signal

    from ..gid_engine import cli
    from ..gid_engine.progress import Job

    def factory(enabled: bool = True):
        def progress(done: int, total: int, what: str) -> None:
            if done == 3:
                signal.raise_signal(getattr(signal, name))

        return Job(progress), lambda: None

    sb.user_files("out", ["notes.txt"])
    with _patched(cli, "progress_job", factory):
        sb.cli("render", sb.still(), "--motion", sb.motion(), "-o", sb.path("out"), "--frames", "8",
               "--renderer", "splat")


def _sigterm_after_3(sb: Sandbox) -> None:
    _signal_after_3(sb, "SIGTERM")


def _sighup_after_3(sb: Sandbox) -> None:
    import signal

    _signal_after_3(sb, "SIGHUP" if hasattr(signal, "SIGHUP") else "SIGTERM")


# ------------------------------------------------------------------------------------ system faults
def _output_name_too_long(sb: Sandbox) -> None:
    _render(sb, sb.still(), sb.motion(), "a" * 300)


def _seed_negative(sb: Sandbox) -> None:
    sb.cli("predict", sb.still(), "-o", sb.path("p.gidsv"), "--seed", "-1")


def _undecodable_file_name(sb: Sandbox) -> None:
    still = sb.still()
    if os.name == "nt":  # Windows names are Unicode; a non-ASCII name is the nearest case
        name = sb.inside(sb.path("caf\u00e9.png"))
        os.rename(still, name)
    else:
        name = Path(os.fsdecode(os.fsencode(sb.root) + b"/caf\xe9.png"))  # Latin-1 bytes, not UTF-8
        os.rename(still, name)
    obs = _render(sb, name, sb.motion(), "out")
    if obs.code == 0:
        recorded = _sidecar(sb).get("params", {}).get("image", {}).get("path", "")
        sb.check(os.fsencode(recorded) == os.fsencode(name), f"the sidecar names {recorded!r}, not the still")


# ------------------------------------------------------------------------------------ wrong results
def _video_switches_resolution(sb: Sandbox) -> None:
    _extract(sb, sb.clip_switching_size())


def _motion_huge_coefficients(sb: Sandbox) -> None:
    sb.cli("info", sb.raw_gidsv("m.gidsv", np.full((16, 4, 16, 24), 3e38, np.float32)))


def _motion_header_claims_more(sb: Sandbox) -> None:
    data = bytearray(sb.motion().read_bytes())
    old, new = b"(16, 4, 16, 24)", b"(16,4,9999,999)"  # same length: the zip stays readable
    at = data.find(old)
    data[at : at + len(old)] = new
    sb.cli("info", sb.write("corrupt.gidsv", bytes(data)))


def _animated_gif(sb: Sandbox) -> None:
    from PIL import Image

    frames = [Image.fromarray((sb.texture(16, 24) * 255).astype(np.uint8)) for _ in range(3)]
    path = sb.inside(sb.path("anim.gif"))
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    obs = _render(sb, path, sb.motion(), "out")
    if obs.code == 0:
        first = np.asarray(Image.open(path).convert("RGB"))
        got = _read_unchanged(sb.path("out", "frame_0001.png"))
        sb.check(got is not None and np.array_equal(got[:, :, ::-1], first), "frame 1 is not the GIF's first frame")


def _disk_full_new_folder(sb: Sandbox) -> None:
    from ..exporters import atomic

    still, motion = sb.still(), sb.motion()
    with _patched(atomic, "write_file", _disk_full_on_nth_write(1)):
        _render(sb, still, motion, "new/deeper/out")


# ------------------------------------------------------------------------------------ engine API
def _api_fractional_frames(sb: Sandbox) -> None:
    from ..gid_engine.rendering.render import Timing

    sb.api(lambda: Timing(frames=2.5))


def _api_threads_as_text(sb: Sandbox) -> None:
    from ..gid_engine.engine import Engine

    sb.api(lambda: Engine(threads="two"))


def _api_job_as_text(sb: Sandbox) -> None:
    from ..gid_engine.engine import Engine

    still, motion = sb.still(), sb.motion()
    sb.api(lambda: list(Engine(renderer="splat").render_frames(still, motion, job="cancel")))


def _api_timing_as_dict(sb: Sandbox) -> None:
    from ..gid_engine.engine import Engine

    still, motion = sb.still(), sb.motion()
    sb.api(lambda: list(Engine(renderer="splat").render_frames(still, motion, timing={"fps": 30})))


def _api_motion_path(sb: Sandbox) -> None:
    from ..gid_engine.engine import Engine
    from ..gid_engine.rendering.render import Timing

    still, motion = sb.still(), sb.motion()
    frames: list[np.ndarray] = []
    sb.api(lambda: frames.extend(Engine(renderer="splat").render_frames(still, motion, timing=Timing(frames=2))))
    sb.check(len(frames) == 2 and frames[0].shape == (16, 24, 3), f"got {len(frames)} frames")


# ------------------------------------------------------------------------------------ runtime
def _gpu_fails(sb: Sandbox) -> None:
    import onnxruntime as ort

    real_session, real_providers = ort.InferenceSession, ort.get_available_providers

    def providers() -> list[str]:
        return ["CUDAExecutionProvider", *real_providers()]

    def session(*args: Any, **kwargs: Any):
        if "CUDAExecutionProvider" in (kwargs.get("providers") or []):
            raise RuntimeError("CUDA failure 35: CUDA driver version is insufficient for CUDA runtime version")
        return real_session(*args, **kwargs)

    with _patched(ort, "get_available_providers", providers), _patched(ort, "InferenceSession", session):
        obs = _render(sb, sb.still(), sb.motion(), "out", "--device", "gpu")
    if obs.code == 0:
        provider = _sidecar(sb).get("params", {}).get("provider")
        sb.check(provider == "CPUExecutionProvider", f"sidecar provider is {provider}, not the CPU")


def _splat_model(sb: Sandbox, corrupt: Callable[[bytes], bytes]) -> None:
    from ..gid_engine.runtime import SPLAT_ONNX, OnnxSplatter, asset_path

    model = sb.write(SPLAT_ONNX, corrupt(asset_path(SPLAT_ONNX).read_bytes()))
    sb.api(lambda: OnnxSplatter(device="cpu", model=model))


def _splat_truncated(sb: Sandbox) -> None:
    _splat_model(sb, lambda b: b[: len(b) // 2])


def _splat_corrupt(sb: Sandbox) -> None:
    def flip(b: bytes) -> bytes:
        out = bytearray(b)
        out[len(out) // 3] ^= 0xFF  # a string in the graph: no longer valid UTF-8
        return bytes(out)

    _splat_model(sb, flip)


def _prior_copy(sb: Sandbox) -> Path:
    """A private copy of the shipped ONNX motion prior (real copies, never links)."""
    from ..gid_engine.prediction.predict import WEIGHTS_DIR, onnx_dir_for

    src = onnx_dir_for(WEIGHTS_DIR)
    dst = sb.inside(sb.path("prior_onnx"))
    dst.mkdir()
    for f in src.iterdir():
        if f.is_file():
            shutil.copyfile(f, dst / f.name)
    return dst


def _prior_damaged(sb: Sandbox, damage: Callable[[bytes], bytes]) -> None:
    from ..gid_engine.prediction.predict import WEIGHTS_DIR, onnx_dir_for

    if not (onnx_dir_for(WEIGHTS_DIR) / "prior_onnx.json").is_file():
        sb.check(False, "the shipped ONNX motion prior is not installed")
        return
    folder = _prior_copy(sb)
    index = json.loads((folder / "prior_onnx.json").read_text())
    victim = folder / min(index["files"], key=lambda e: e["bytes"])["name"]  # the smallest file: quick
    sb.inside(victim).write_bytes(damage(victim.read_bytes()))
    sb.cli("predict", sb.still(), "-o", sb.path("motion.gidsv"), "--weights", folder, "--backend", "onnx",
           "--device", "cpu", "--steps", "1")


def _prior_checksum(sb: Sandbox) -> None:
    def flip(b: bytes) -> bytes:
        out = bytearray(b)
        out[len(out) // 2] ^= 0x01
        return bytes(out)

    _prior_damaged(sb, flip)


def _prior_truncated(sb: Sandbox) -> None:
    _prior_damaged(sb, lambda b: b[: len(b) - 1000])


def _prior_missing(sb: Sandbox) -> None:
    empty = sb.path("no_weights")
    empty.mkdir()
    sb.cli("predict", sb.still(), "-o", sb.path("motion.gidsv"), "--weights", empty)


def _predict_image_missing(sb: Sandbox) -> None:
    sb.cli("predict", sb.path("no_such_still.png"), "-o", sb.path("motion.gidsv"))


def _no_network(sb: Sandbox) -> None:
    attempts: list[str] = []

    def blocked(*args: Any, **kwargs: Any):
        attempts.append(repr(args[:2])[:80])
        raise OSError(errno.ENETUNREACH, "network blocked by gid selftest")

    clip = sb.clip()
    still = sb.still("still.png", 32, 24)
    with contextlib.ExitStack() as stack:
        for obj, name in ((socket.socket, "connect"), (socket.socket, "connect_ex"),
                          (socket, "create_connection"), (socket, "getaddrinfo")):
            stack.enter_context(_patched(obj, name, blocked))
        with contextlib.suppress(OSError):  # the block itself works
            socket.create_connection(("192.0.2.1", 80), timeout=0.1)
        sb.check(len(attempts) == 1, "the socket block does not work")
        attempts.clear()
        first = _extract(sb, clip, out="motion.gidsv")
        sb.check(first.code == 0, f"extract failed offline: {' / '.join(first.lines)}")
        sb.cli("render", still, "--motion", sb.path("motion.gidsv"), "-o", sb.path("out"), "--frames", "3",
               "--renderer", "splat")
    sb.check(not attempts, f"tried to reach the network: {attempts[:2]}")
    sb.check(len(list(sb.path("out").glob("frame_*.png"))) == 3 if sb.path("out").is_dir() else False,
             "the offline render did not write its 3 frames")


# ------------------------------------------------------------------------------------ the corpus
_WROTE = r"wrote "  # the success line of extract / render


CASES: list[Case] = [
    # still images
    Case("image-missing", "render: the still does not exist", "error, names the file",
         _image_missing, message=_err(r"image not found: .*no_such_still\.png$")),
    Case("image-empty", "render: a 0-byte PNG", "error: file is empty", _image_empty,
         message=_err(r"image file is empty")),
    Case("image-truncated-png", "render: a PNG cut in half", "error: corrupt/truncated", _image_truncated,
         message=_err(r"cannot decode image .*truncated")),
    Case("image-corrupt-bytes", "render: 4 KiB of random bytes named .png", "error: not an image",
         _image_corrupt, message=_err(r"cannot decode image .*not an image")),
    Case("image-is-a-folder", "render: the 'image' is a folder", "error: expected a file", _image_folder,
         message=_err(r"expected an image file, got a folder")),
    Case("image-1x1", "render: a 1x1 PNG with square motion", "works: four 1x1 frames", _image_1x1,
         code=EXIT_OK, message=_WROTE, writes=True),
    Case("image-huge-header", "render: 100-byte PNG whose IHDR claims 20000x20000",
         "error before decoding (limit 16384^2 px), nothing allocated", _image_huge,
         message=_err(r"is 20000x20000; gid accepts at most \d+ pixels")),
    Case("image-16bit-png", "render: 16-bit PNG, --depth 16", "works: 16-bit frames, frame 1 = still",
         _image_16bit, code=EXIT_OK, message=_WROTE, writes=True),
    Case("image-float-exr", "render: float EXR with values > 1, --format exr", "works: linear float frames",
         _image_exr, code=EXIT_OK, message=_WROTE, writes=True),
    Case("image-rgba", "render: RGBA PNG with an alpha ramp", "works: alpha kept in every frame",
         _image_rgba, code=EXIT_OK, message=_WROTE, writes=True),
    Case("image-grayscale", "render: 8-bit grayscale PNG", "works: gray frames", _image_gray,
         code=EXIT_OK, message=_WROTE, writes=True),
    Case("image-palette-png", "render: indexed (palette) PNG from Pillow", "works: right colours",
         _image_palette, code=EXIT_OK, message=_WROTE, writes=True),
    Case("image-cmyk-jpeg", "render: CMYK JPEG from Pillow", "works: right colours", _image_cmyk,
         code=EXIT_OK, message=_WROTE, writes=True),
    Case("image-nan-exr", "render: float EXR with a NaN pixel", "error: NaN in the image", _image_nan_exr,
         message=_err(r"NaN or infinite")),
    # videos
    Case("video-missing", "extract: the clip does not exist", "error, names the clip", _video_missing,
         message=_err(r"clip not found: .*no_such_clip\.mp4$")),
    Case("video-empty", "extract: a 0-byte .mp4", "error: file is empty", _video_empty,
         message=_err(r"video file is empty")),
    Case("video-corrupt-bytes", "extract: 8 KiB of random bytes named .avi", "error: not a video",
         _video_corrupt, message=_err(r"cannot (open|decode) video")),
    Case("video-one-frame", "extract: an AVI with 1 frame", "error: needs at least 2 frames",
         _video_one_frame, message=_err(r"only 1 frame; .*at least 2 frames")),
    Case("video-too-short", "extract: 4 frames at 8 fps (0.5 s)", "error: shorter than 1 s / 8 frames",
         _video_too_short, message=_err(r"at least 1 s and 8 frames")),
    Case("sequence-without-fps", "extract: a PNG sequence, no --fps (frame rate unknown)",
         "error: asks for --fps", _sequence_without_fps, message=_err(r"image sequence needs --fps")),
    Case("extract-fps-zero", "extract: a PNG sequence with --fps 0", "error: fps out of range",
         _extract_fps_zero, message=_err(r"--fps must be between 0.1 and")),
    Case("video-variable-rate", "extract: samples/tree.avi (15 fps declared, 376 of 444 frames repeats)",
         "works: container timestamps used", _video_variable_rate, code=EXIT_OK, message=_WROTE, writes=True),
    # spectral volumes
    Case("motion-missing", "render: the .gidsv does not exist", "error, names the file", _motion_missing,
         message=_err(r"spectral volume file not found")),
    Case("motion-empty", "info: a 0-byte .gidsv", "error: empty", _motion_empty, message=_err(r"is empty$")),
    Case("motion-not-gidsv", "info: a PNG renamed .gidsv", "error: not a spectral volume", _motion_not_gidsv,
         message=_err(r"not a gid spectral volume")),
    Case("motion-wrong-shape", "info: coefficients (16, 3, 8, 12), metadata consistent",
         "error: expected (K, 4, H, W)", _motion_wrong_shape, message=_err(r"expected \(K, 4, H, W\)")),
    Case("motion-nan", "info: NaN-filled coefficients, checksum consistent", "error: NaN", _motion_nan,
         message=_err(r"NaN or infinite")),
    Case("motion-truncated", "render: a .gidsv cut at 60 %", "error: truncated", _motion_truncated,
         message=_err(r"truncated")),
    Case("motion-bitflip", "render: one flipped bit inside the coefficients", "error: checksum mismatch",
         _motion_bitflip, message=_err(r"checksum mismatch")),
    Case("motion-bad-checksum", "info: metadata SHA-256 does not match the array", "error: checksum mismatch",
         _motion_bad_sha, message=_err(r"checksum mismatch")),
    Case("motion-future-version", "info: format version 99", "error: newer than this gid", _motion_future,
         message=_err(r"version 99 is newer")),
    Case("motion-other-aspect", "render: 16x16 motion on a 24x16 still", "error: aspect, suggests --fit stretch",
         _motion_aspect, message=_err(r"aspect .*--fit stretch")),
    Case("displace-corrupt-motion", "displace: a .gidsv of zip magic + random bytes", "error: damaged",
         _displace_corrupt_motion, message=_err(r"(truncated|damaged|corrupt)")),
    # bad numbers
    Case("render-frames-zero", "render: --frames 0", "error: frames out of range", _render_frames_zero,
         message=_err(r"frames must be between 1 and 100,000, got 0")),
    Case("render-fps-zero", "render: --fps 0", "error: fps out of range", _render_fps_zero,
         message=_err(r"fps must be between 0.1 and 1000, got")),
    Case("render-amplitude-nan", "render: --amplitude nan", "error: amplitude", _render_amplitude_nan,
         message=_err(r"amplitude")),
    # outputs
    Case("output-not-writable", "render: output in a read-only folder (as root: parent is a file)",
         "error: cannot write there", _output_not_writable,
         message=_err(r"(no permission|cannot create folder|not a directory|Not a directory)")),
    Case("output-is-a-file", "render: -o names the user's existing file", "error; the file is untouched",
         _output_is_file, message=_err(r"it is a file")),
    Case("output-holds-user-files", "render: frame_0002.png, frame.json of the user's already there",
         "error before rendering; user's bytes identical", _output_has_user_files,
         message=_err(r"already exists \(and 1 more")),
    Case("output-holds-user-preview", "render --preview gif: the user's frame_preview.gif already there",
         "error before rendering (not after the frames are in place)", _output_has_user_preview,
         message=_err(r"frame_preview\.gif already exists")),
    Case("gif-output-parent-is-file", "render --format gif: -o a_file/out where a_file is a file",
         "error (was an internal error), file untouched", _gif_parent_is_file,
         message=_err(r"cannot create folder .*Not a directory")),
    Case("extract-output-exists", "extract: -o names the user's existing .gidsv", "error; file untouched",
         _extract_output_exists, message=_err(r"already exists; pass --overwrite")),
    Case("disk-full-sequence", "render: ENOSPC on the 3rd file write (half written), earlier take1_* in folder",
         "error; no frame, partial or staging file; take1_* intact", _disk_full_sequence,
         message=_err(r"disk full while writing .*take2_0003\.png; nothing was written")),
    Case("disk-full-preview", "render --preview gif: ENOSPC while writing the GIF preview",
         "error; the already staged frames are removed too", _disk_full_preview,
         message=_err(r"disk full while writing .*frame_preview\.gif")),
    Case("disk-full-motion-file", "extract: ENOSPC while writing the .gidsv (half written)",
         "error; no temp file left", _disk_full_motion_file, message=_err(r"disk full while writing")),
    Case("cancel-after-frame-3", "render 8 frames, the Job cancels after frame 3", "exit 130; nothing left",
         _cancel_after_3, code=EXIT_CANCELLED, message=r"^gid: cancelled; nothing was written$"),
    Case("ctrl-c-after-frame-3", "render 8 frames, Ctrl-C (KeyboardInterrupt) after frame 3",
         "exit 130; nothing left", _ctrl_c_after_3, code=EXIT_CANCELLED,
         message=r"^gid: cancelled; nothing was written$"),
    Case("cancel-gif", "render --format gif into a new folder, cancelled after frame 3",
         "exit 130; not even the folder is left", _cancel_gif, code=EXIT_CANCELLED,
         message=r"^gid: cancelled; nothing was written$"),
    # files lost (issue 22): no output replaces an input
    Case("extract-over-its-video", "extract clip.avi -o clip.avi --overwrite", "error before any work; clip intact",
         _extract_over_its_video, message=_err(r"clip\.avi is an input of this command")),
    Case("render-over-hard-link", "render --overwrite: out/frame_0001.png is a hard link to the still",
         "error: an input; the still intact", _render_over_a_hard_link_of_the_still,
         message=_err(r"frame_0001\.png is an input of this command")),
    # runaway work: refused before any work, naming the option to change
    Case("render-500000-frames", "render --slowmo 100 --fps 1000 (one loop = 500,000 frames)",
         "error: over 100,000 frames", _render_half_a_million_frames,
         message=_err(r"makes 500,000 frames, over the limit of 100,000: lower --slowmo or --fps")),
    Case("motion-endless-loop", "render: a valid motion file whose loop is 3,000,000 frames",
         "error: frame count", _motion_endless_loop, message=_err(r"makes 3,000,000 frames, over the limit")),
    Case("motion-fps-1e-7", "displace: a motion file at 1e-7 fps", "error: frame count (not 'out of memory')",
         _motion_fps_tiny, message=_err(r"frames, over the limit of 100,000")),
    Case("displace-20000x15000", "displace --size 20000x15000", "error: over the memory budget",
         _displace_huge_size, message=_err(r"displacing 20000x15000 frames .* over the 2\.0 GiB budget")),
    Case("extract-8192x8192", "extract --size 8192x8192", "error: over the memory budget", _extract_huge_size,
         message=_err(r"extracting 8192x8192 motion .* lower --max-side or --size, or raise the budget")),
    Case("extract-size-1x1", "extract --size 1x1", "error: below optical flow's minimum (was exit 3)",
         _extract_below_flow_minimum, message=_err(r"below optical flow's minimum of 12 px")),
    Case("predict-panorama", "predict: a 2000x10 still (a 32000x160 volume)", "error before sampling",
         _predict_panorama, message=_err(r"2000x10 image .* crop the image nearer the model's")),
    Case("image-jpeg-bomb", "render: a 1 KB JPEG whose header claims 20000x20000", "error from the header",
         _jpeg_bomb, message=_err(r"is 20000x20000; gid accepts at most \d+ pixels")),
    Case("motion-compressed", "info: a .gidsv with deflated members (how a zip bomb gets in)",
         "error unread", _motion_compressed, message=_err(r"is compressed; gid writes uncompressed files")),
    Case("motion-fifo", "render: the motion path is a FIFO", "error, not a wait forever", _motion_fifo,
         message=_err(r"is not a regular file")),
    # signals: like Ctrl-C
    Case("sigterm-after-frame-3", "render 8 frames, SIGTERM after frame 3", "exit 143; nothing left",
         _sigterm_after_3, code=143, message=r"^gid: stopped by SIGTERM; nothing was written$"),
    Case("sighup-after-frame-3", "render 8 frames, SIGHUP (terminal closed) after frame 3",
         "exit 129; nothing left", _sighup_after_3, code=129 if os.name != "nt" else 143,
         message=r"^gid: stopped by SIG(HUP|TERM); nothing was written$"),
    # system faults: one line, not an internal error
    Case("output-name-300-bytes", "render -o a 300-byte folder name", "error: name too long (was exit 3)",
         _output_name_too_long, message=_err(r"file name too long: .* is 300 bytes; file systems allow 255")),
    Case("seed-negative", "predict --seed -1", "error: names --seed (was exit 3)", _seed_negative,
         message=_err(r"predict: argument --seed: must be an integer 0 \.\. ")),
    Case("undecodable-file-name", "render: a still named with Latin-1 bytes (not UTF-8)",
         "works; the sidecar records the name (was exit 3)", _undecodable_file_name, code=EXIT_OK,
         message=_WROTE, writes=True),
    # wrong or misleading results
    Case("video-switches-resolution", "extract: an MJPG AVI going 32x24 -> 16x12 at frame 20",
         "error (was 10x the motion)", _video_switches_resolution,
         message=_err(r"changes resolution at frame 20 \(32x24 -> 16x12\)")),
    Case("motion-3e38", "info: coefficients of 3e38, checksum consistent", "one line, no overflow warnings",
         _motion_huge_coefficients, message=_err(r"coefficients reach 3e\+38 px, over the 1e\+06 px")),
    Case("motion-header-claims-more", "info: coeffs header edited to claim 16x4x9999x999",
         "error: corrupt (was 'out of memory')", _motion_header_claims_more,
         message=_err(r"declares \d+ bytes of data but holds \d+; the file is corrupt")),
    Case("image-animated-gif", "render: a 3-frame animated GIF", "works: its first frame (was 'corrupt')",
         _animated_gif, code=EXIT_OK, message=_WROTE, writes=True),
    Case("disk-full-new-folder", "render into new/deeper/out, ENOSPC on the first write",
         "error; not even the folders are left", _disk_full_new_folder,
         message=_err(r"disk full while writing .*; nothing was written")),
    # engine API: checked at the door
    Case("api-frames-2.5", "Timing(frames=2.5)", "error names frames (was 3 frames)", _api_fractional_frames,
         message=_err(r"frames must be an integer, got float 2\.5$")),
    Case("api-threads-text", "Engine(threads='two')", "error names threads", _api_threads_as_text,
         message=_err(r"threads must be an integer, got str 'two'")),
    Case("api-job-text", "Engine.render_frames(..., job='cancel')", "error names job", _api_job_as_text,
         message=_err(r"job must be a Job")),
    Case("api-timing-dict", "Engine.render_frames(..., timing={'fps': 30})", "error names timing",
         _api_timing_as_dict, message=_err(r"timing must be a Timing")),
    Case("api-motion-path", "Engine.render_frames(still, 'm.gidsv')", "works: the path is read",
         _api_motion_path, code=EXIT_OK, message=r"^$"),
    # runtime and models
    Case("gpu-provider-fails", "render --device gpu: CUDA listed, its session raises at start",
         "works on the CPU, says so in one line", _gpu_fails, code=EXIT_OK, writes=True,
         message=r"GPU \(CUDA\) provider failed \(CUDA failure 35.*\); running on the CPU / wrote 4 frames"),
    Case("splat-model-truncated", "OnnxSplatter(model=): the ONNX renderer cut in half",
         "error: cannot load, no traceback", _splat_truncated, message=_err(r"cannot load softmax_splat\.onnx")),
    Case("splat-model-corrupt", "OnnxSplatter(model=): one byte of the ONNX renderer flipped",
         "error: cannot load, no onnxruntime banner", _splat_corrupt,
         message=_err(r"cannot load softmax_splat\.onnx")),
    Case("prior-weights-checksum", "predict --weights COPY: one bit flipped in an ONNX prior file",
         "error: checksum mismatch", _prior_checksum, message=_err(r"corrupt \(checksum mismatch\)")),
    Case("prior-weights-truncated", "predict --weights COPY: an ONNX prior file 1000 bytes short",
         "error: truncated", _prior_truncated, message=_err(r"is truncated \(\d+ bytes, expected \d+\)")),
    Case("prior-weights-missing", "predict --weights an empty folder", "error: model not installed",
         _prior_missing, message=_err(r"not installed")),
    Case("predict-image-missing", "predict: the still does not exist", "error, names the file",
         _predict_image_missing, message=_err(r"image not found")),
    Case("no-network", "extract + render with every socket connect / DNS lookup blocked",
         "works offline, no connection attempted", _no_network, code=EXIT_OK, message=_WROTE, writes=True),
]


# ------------------------------------------------------------------------------------ running
def run_case(case: Case) -> Result:
    """Run one case in a fresh temporary folder and judge it."""
    root = Path(tempfile.mkdtemp(prefix=f"gid-selftest-{case.id}-"))
    sb = Sandbox(root)
    failures: list[str] = []
    try:
        case.build(sb)
    except Exception as exc:
        failures.append(f"the case raised {type(exc).__name__}: {exc}")
    finally:
        for dirpath, dirnames, _ in os.walk(root):
            for d in dirnames:
                with contextlib.suppress(OSError):
                    os.chmod(os.path.join(dirpath, d), 0o700)
        shutil.rmtree(root, ignore_errors=True)
    obs = sb.calls[-1] if sb.calls else None
    written = sorted({p for c in sb.calls for p in c.written})
    lost = sorted({p for c in sb.calls for p in c.lost})
    result = Result(case, obs, written=written, lost=lost)
    if obs is None:
        failures.append("the engine was never called")
    else:
        if obs.code != case.code:
            failures.append(f"exit code {obs.code}, expected {case.code}")
        if "Traceback" in obs.stdout + obs.stderr:
            failures.append("printed a traceback")
        if case.one_line and len(obs.lines) != 1:
            failures.append(f"printed {len(obs.lines)} lines, expected exactly one")
        if not re.search(case.message, " / ".join(ln.strip() for ln in obs.lines), flags=re.M):
            failures.append(f"message does not match {case.message!r}")
        if case.writes and not obs.written:
            failures.append("wrote nothing, expected output")
        if not case.writes and written:
            failures.append(f"wrote {', '.join(written[:4])}")
        if lost:
            failures.append(f"changed or removed existing files: {', '.join(lost[:4])}")
        leftovers = [p for p in written if ".gid-staging-" in p or ".gid-tmp-" in p]
        if leftovers:
            failures.append(f"left temporary files: {', '.join(leftovers[:4])}")
    failures += sb.notes
    result.failures = [_tidy(f, root) for f in failures]
    if obs is not None:
        obs.stdout, obs.stderr = _tidy(obs.stdout, root), _tidy(obs.stderr, root)
    return result


def _tidy(text: str, root: Path) -> str:
    """Temporary paths shown as ``<tmp>`` so the table reads the same on every machine."""
    for form in {str(root.resolve()), str(root)}:
        text = text.replace(form, "<tmp>")
    return text


def run_cases(ids: Optional[Sequence[str]] = None) -> list[Result]:
    chosen = CASES if not ids else [c for c in CASES if c.id in set(ids)]
    unknown = set(ids or ()) - {c.id for c in CASES}
    if unknown:
        from ..gid_engine.errors import InputError

        raise InputError(f"unknown selftest case(s): {', '.join(sorted(unknown))}")
    return [run_case(c) for c in chosen]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def format_table(results: Sequence[Result], markdown: bool = True) -> str:
    rows = []
    for r in results:
        obs = r.observed
        code = "-" if obs is None else str(obs.code)
        nothing = "-" if obs is None else ("yes" if not r.written else f"no ({len(r.written)} new)")
        intact = "-" if obs is None else ("yes" if not r.lost else "NO")
        verdict = "PASS" if r.passed else "FAIL: " + "; ".join(r.failures)
        rows.append((r.case.id, r.case.input, r.case.expected, f"{code}: {r.message}", nothing, intact, verdict))
    head = ("case", "input", "expected", "observed (exit code: message)", "nothing written", "user's files intact",
            "verdict")
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    else:
        lines = [f"{'verdict':<6} {'case':<26} {'exit':>4}  message"]
        for r, row in zip(results, rows):
            lines.append(f"{'PASS' if r.passed else 'FAIL':<6} {row[0]:<26} {row[3].split(':', 1)[0]:>4}  "
                         f"{row[3].split(': ', 1)[-1]}")
            if not r.passed:
                lines.append(f"{'':<6} {'':<26}       -> {'; '.join(r.failures)}")
    passed = sum(r.passed for r in results)
    lines.append("")
    lines.append(f"{passed}/{len(results)} cases passed")
    return "\n".join(lines)


def add_commands(sub: Any) -> None:
    """``gid selftest``: added to the CLI's subcommands (``cli.COMMAND_MODULES``)."""
    p = sub.add_parser("selftest", help="run the corpus of bad inputs and faults, print what each does")
    p.add_argument("--markdown", action="store_true", help="print the table as markdown")
    p.add_argument("--case", nargs="+", default=None, metavar="ID", help="run only these cases")
    p.set_defaults(func=_command)


def _command(args: Any) -> None:
    code = main(markdown=args.markdown, ids=args.case)
    if code:
        raise SystemExit(code)


def main(markdown: bool = False, ids: Optional[Sequence[str]] = None, out=None) -> int:
    """Run the corpus, print the table; 0 when every case passes, 1 otherwise."""
    results = run_cases(ids)
    print(format_table(results, markdown=markdown), file=out or sys.stdout)
    return 0 if all(r.passed for r in results) else 1
