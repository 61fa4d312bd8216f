"""Opening clips: videos, image sequences of every pixel type, and every user mistake."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

from gid.gid_engine.errors import InputError
from gid.gid_engine.media.video import open_frames

from gid.exporters.opencv import cv2

from conftest import REPO

TREE = REPO / "samples" / "tree.avi"


def write_sequence(folder: Path, frames: list[np.ndarray], name: str = "frame_{:04d}.png") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        assert cv2.imwrite(str(folder / name.format(i)), frame)
    return folder


def write_video(path: Path, frames: list[np.ndarray], fps: float = 30.0, fourcc: str = "MJPG") -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def ramp_frames(n: int, h: int = 24, w: int = 32, dtype=np.uint8) -> list[np.ndarray]:
    """Frame i is a flat gray of value ~ i, so order and bit depth can be checked exactly."""
    top = 255 if dtype == np.uint8 else 65535
    return [np.full((h, w, 3), (i + 1) * top // (n + 1), dtype) for i in range(n)]


# ----------------------------------------------------------------------------- image sequences
def test_folder_is_read_in_natural_order_with_fps(tmp_path):
    frames = ramp_frames(12)
    folder = write_sequence(tmp_path / "seq", frames, name="f{}.png")  # f2 must precede f10
    clip = open_frames(folder, fps=24)
    assert (clip.fps, clip.size, clip.frame_count, clip.kind) == (24.0, (32, 24), 12, "sequence")
    got = list(clip.frames())
    assert [f.index for f in got] == list(range(12))
    assert [f.time for f in got] == pytest.approx([i / 24 for i in range(12)])
    values = [f.pixels[0, 0, 0] for f in got]
    assert values == pytest.approx([(i + 1) * 255 // 13 / 255 for i in range(12)], abs=1e-6)
    assert got[0].pixels.dtype == np.float32 and got[0].pixels.shape == (24, 32, 3)


def test_printf_and_glob_patterns(tmp_path):
    folder = write_sequence(tmp_path / "seq", ramp_frames(5))
    (folder / "notes.txt").write_text("not a frame")
    for pattern in ("frame_%04d.png", "frame_*.png", "frame_%d.png"):
        clip = open_frames(folder / pattern, fps=10)
        assert clip.frame_count == 5
        assert len(list(clip)) == 5
    assert [f.index for f in open_frames(folder / "frame_%04d.png", fps=10).frames(start=3)] == [3, 4]


def test_16bit_gray_alpha_and_exr_sequences_keep_their_values(tmp_path):
    sixteen = write_sequence(tmp_path / "s16", ramp_frames(3, dtype=np.uint16))
    px = next(iter(open_frames(sixteen, fps=5)))
    assert px[0, 0, 0] == pytest.approx(16383 / 65535, abs=1e-7)  # not rounded to 8 bits

    gray = write_sequence(tmp_path / "gray", [f[:, :, 0] for f in ramp_frames(3)])
    assert next(iter(open_frames(gray, fps=5))).shape == (24, 32, 3)

    rgba = [np.dstack([f, np.full(f.shape[:2], 128, np.uint8)]) for f in ramp_frames(3)]
    px = next(iter(open_frames(write_sequence(tmp_path / "rgba", rgba), fps=5)))
    assert px.shape == (24, 32, 4) and px[0, 0, 3] == pytest.approx(128 / 255)

    exr = [np.full((8, 10, 3), 2.5 * (i + 1), np.float32) for i in range(3)]
    try:
        folder = write_sequence(tmp_path / "exr", exr, name="f{:02d}.exr")
    except (AssertionError, cv2.error):
        pytest.skip("this OpenCV build cannot write EXR")
    assert next(iter(open_frames(folder, fps=5)))[0, 0, 0] == pytest.approx(2.5)  # HDR kept


def test_sequence_errors(tmp_path):
    folder = write_sequence(tmp_path / "seq", ramp_frames(3))
    with pytest.raises(InputError, match="image sequence needs --fps"):
        open_frames(folder)
    with pytest.raises(InputError, match="only 1 frame"):
        open_frames(write_sequence(tmp_path / "one", ramp_frames(1)), fps=5)
    with pytest.raises(InputError, match="no image files"):
        open_frames(folder / "nothing_%04d.png", fps=5)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no image files"):
        open_frames(tmp_path / "empty", fps=5)
    with pytest.raises(InputError, match="single image"):
        open_frames(folder / "frame_0000.png", fps=5)

    mixed = write_sequence(tmp_path / "mixed", ramp_frames(2) + ramp_frames(1, h=20))
    clip = open_frames(mixed, fps=5)
    with pytest.raises(InputError, match="mixes frame sizes.*32x20"):
        list(clip)
    with pytest.raises(InputError, match="past the end"):
        next(clip.frames(start=7))


@pytest.mark.parametrize("bad", [0, -5, float("nan"), float("inf"), 5000, "fast"])
def test_fps_override_must_be_sane(tmp_path, bad):
    folder = write_sequence(tmp_path / "seq", ramp_frames(2))
    with pytest.raises(InputError, match="--fps"):
        open_frames(folder, fps=bad)


# ----------------------------------------------------------------------------- video files
def test_video_reports_fps_size_count_and_rgb_frames(tmp_path):
    frames = ramp_frames(6, h=48, w=64)
    frames[0][:] = (0, 0, 255)  # BGR red
    clip = open_frames(write_video(tmp_path / "clip.avi", frames, fps=25))
    assert (clip.fps, clip.size, clip.frame_count, clip.kind) == (25.0, (64, 48), 6, "video")
    got = list(clip.frames())
    assert len(got) == 6
    assert got[0].pixels[24, 32] == pytest.approx([1.0, 0.0, 0.0], abs=0.03)  # decoded as RGB red
    assert [f.time for f in got] == pytest.approx([i / 25 for i in range(6)], abs=1e-3)
    assert [f.index for f in clip.frames(start=4)] == [4, 5]
    assert len(list(clip)) == 6  # iterable again: each pass reopens the file


def test_fps_override_wins_over_the_container(tmp_path):
    path = write_video(tmp_path / "clip.mp4", ramp_frames(3, h=48, w=64), fps=5000, fourcc="mp4v")
    with pytest.raises(InputError, match="unusable frame rate \\(5000\\); pass --fps"):
        open_frames(path)
    clip = open_frames(path, fps=12)
    assert clip.fps == 12.0
    assert [f.time for f in clip.frames()] == pytest.approx([0, 1 / 12, 2 / 12])


def test_video_errors(tmp_path):
    with pytest.raises(InputError, match="clip not found"):
        open_frames(tmp_path / "missing.avi")
    (tmp_path / "empty.avi").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        open_frames(tmp_path / "empty.avi")
    (tmp_path / "notes.avi").write_text("these are my notes, not a video\n" * 50)
    with pytest.raises(InputError, match="cannot (open|decode) video notes.avi"):
        open_frames(tmp_path / "notes.avi")
    one = write_video(tmp_path / "one.avi", ramp_frames(1, h=48, w=64))
    with pytest.raises(InputError, match="only 1 frame; motion extraction needs at least 2 frames"):
        open_frames(one)
    with pytest.raises(InputError, match="past the end"):
        next(open_frames(write_video(tmp_path / "two.avi", ramp_frames(2, h=48, w=64))).frames(start=5))


def test_messages_are_one_line(tmp_path):
    (tmp_path / "x.avi").write_text("nope")
    with pytest.raises(InputError) as info:
        open_frames(tmp_path / "x.avi")
    assert "\n" not in str(info.value)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to list open files")
def test_capture_is_released_when_reading_stops_early(tmp_path):
    path = write_video(tmp_path / "clip.avi", ramp_frames(8, h=48, w=64))

    def open_handles() -> int:
        return sum(os.path.realpath(f"/proc/self/fd/{fd}") == str(path.resolve()) for fd in os.listdir("/proc/self/fd"))

    clip = open_frames(path)
    assert open_handles() == 0  # the probe closed its capture
    frames = clip.frames()
    next(frames)
    assert open_handles() == 1
    frames.close()  # what a `for ... break` does
    assert open_handles() == 0


def test_shipped_tree_clip_uses_container_timestamps():
    """tree.avi says 15 fps and 444 frames, but 376 chunks are empty (repeat-previous), so 68
    frames decode over 29.6 s; their real times, not index / 15, are what motion needs."""
    clip = open_frames(TREE)
    assert clip.fps == pytest.approx(15.0, rel=1e-3) and clip.size == (320, 240)
    times = [f.time for f in clip.frames()]
    assert len(times) == 68
    assert times[1] == pytest.approx(11 / 15, abs=2e-3)  # the second stored frame is chunk 11
    assert times[-1] == pytest.approx(443 / 15, abs=2e-3)
    assert all(b > a for a, b in zip(times, times[1:]))
    assert math.isfinite(times[-1])
