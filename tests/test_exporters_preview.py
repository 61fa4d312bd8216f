"""MP4 and GIF previews: readable back, right frame count and size, nothing left on failure."""

from __future__ import annotations

import os

os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")

from gid.exporters.opencv import cv2
import numpy as np
import pytest
from PIL import Image

from gid.exporters.errors import ExportError, OutputExistsError
from gid.exporters.preview import write_gif, write_mp4


def frames(n, h=21, w=31):
    """Distinct frames (a moving bar) so no encoder can merge them."""
    out = []
    for i in range(n):
        x = np.full((h, w, 3), 0.2, np.float32)
        x[:, (3 * i) % w, :] = [1.0, 0.5, 0.0]
        out.append(x)
    return out


def test_mp4_frame_count_and_even_size(tmp_path):
    seen = []
    path = write_mp4(iter(frames(8)), tmp_path / "prev.mp4", fps=24, count=8, on_frame=lambda i, n: seen.append(i))
    assert seen == list(range(1, 9))
    assert [p.name for p in tmp_path.iterdir()] == ["prev.mp4"]
    cap = cv2.VideoCapture(str(path))
    try:
        assert cap.isOpened()
        n, sizes, first = 0, set(), None
        while True:
            ok, img = cap.read()
            if not ok:
                break
            first = img if first is None else first
            n += 1
            sizes.add(img.shape)
    finally:
        cap.release()
    assert n == 8 and sizes == {(22, 32, 3)}  # 21x31 padded to even
    assert abs(int(first[10, 5, 0]) - 51) <= 6  # grey 0.2 survives lossy coding roughly


def test_mp4_no_overwrite_and_cancel_cleanup(tmp_path):
    target = tmp_path / "prev.mp4"
    target.write_bytes(b"user video")
    with pytest.raises(OutputExistsError):
        write_mp4(frames(2), target, fps=24, count=2)
    assert target.read_bytes() == b"user video"

    def gen():
        yield from frames(3)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_mp4(gen(), target, fps=24, count=5, overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["prev.mp4"] and target.read_bytes() == b"user video"
    write_mp4(frames(2), target, fps=24, count=2, overwrite=True)
    assert target.read_bytes() != b"user video"


def test_mp4_bad_input(tmp_path):
    with pytest.raises(ExportError, match="expected 3 frames|got 2 frames, expected 3"):
        write_mp4(frames(2), tmp_path / "a.mp4", fps=24, count=3)
    with pytest.raises(ExportError, match="fps"):
        write_mp4(frames(1), tmp_path / "a.mp4", fps=0, count=1)
    with pytest.raises(ExportError, match="shape"):
        write_mp4([np.zeros((4, 4, 4), np.float32)], tmp_path / "a.mp4", fps=24, count=1)
    assert list(tmp_path.iterdir()) == []


def test_gif_frames_loop_and_downscale(tmp_path):
    path = write_gif(frames(6, h=50, w=200), tmp_path / "prev.gif", fps=20, count=6, max_width=100)
    with Image.open(path) as im:
        assert im.n_frames == 6 and im.size == (100, 25)
        assert im.info["loop"] == 0 and im.info["duration"] == 50
    assert [p.name for p in tmp_path.iterdir()] == ["prev.gif"]


def test_gif_no_overwrite_and_wrong_count(tmp_path):
    target = tmp_path / "prev.gif"
    target.write_bytes(b"user gif")
    with pytest.raises(OutputExistsError):
        write_gif(frames(2), target, fps=10, count=2)
    with pytest.raises(ExportError, match="more frames"):
        write_gif(frames(3), target, fps=10, count=2, overwrite=True)
    assert target.read_bytes() == b"user gif" and len(list(tmp_path.iterdir())) == 1
