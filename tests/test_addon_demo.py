"""The headless Blender demo, end to end in a fresh process (as `make demo` runs it)."""

import subprocess
import sys
from pathlib import Path

import numpy as np

from gid.exporters.opencv import cv2


SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def test_blender_demo_builds_a_blend_and_renders_the_loop(tmp_path):
    """Samples passed explicitly: an installed extension (the Blender legs) does not carry them."""
    out = tmp_path / "demo"
    r = subprocess.run([sys.executable, "-m", "gid.addon.demo", "-o", str(out), "--frames", "12",
                        "--render-frames", "4", "--still", str(SAMPLES / "tree_still.png"),
                        "--clip", str(SAMPLES / "tree.avi")], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (out / "gid_demo.blend").is_file() and "Traceback" not in r.stderr
    rendered = sorted((out / "render").glob("loop_*.png"))
    baked = sorted(out.glob("gid/*/loop/frame_*.png"))
    assert len(rendered) == 4 and len(baked) == 12
    for frame in (1, 3):  # the compositor plays the baked loop, frame for frame
        a = cv2.imread(str(rendered[frame - 1])).astype(int)
        b = cv2.imread(str(baked[frame - 1])).astype(int)
        assert np.abs(a - b).max() <= 1
    assert np.abs(cv2.imread(str(baked[3])).astype(int) - cv2.imread(str(baked[0]))).mean() > 0.5  # it moves
