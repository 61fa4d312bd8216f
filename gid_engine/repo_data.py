"""Where a clone of the repository keeps its data: the sample clips and the licensed stills.

Named once because several modules need them (the demo, the self-test, the prior's held-out
evaluation clip, the renderer's clip splits, the synthetic data) and because none of them ship in
the Blender extension or the wheel (``packaging.py`` leaves ``samples/`` and ``data/`` out): a
caller must check that a path exists before it relies on it.
"""

from __future__ import annotations

import json
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLES_DIR = REPO_ROOT / "samples"
TREE_CLIP = SAMPLES_DIR / "tree.avi"  # the licensed real clip; held out from the prior's training
TREE_STILL = SAMPLES_DIR / "tree_still.png"
CLIPS_FILE = SAMPLES_DIR / "clips.json"  # per-clip train/eval frame splits of the renderer
STILLS_DIR = REPO_ROOT / "data" / "stills"
# Still sets: each names its (train, eval) splits in ``STILLS_DIR / "splits.json"``. v1 is the 12 + 2
# stills every model shipped so far was trained and evaluated on (the default, so their commands
# reproduce them); v2 adds 12 training and 2 held-out stills from Debian's wallpapers (MODEL_CARD.md).
STILL_SETS = {"v1": ("train", "eval"), "v2": ("train_v2", "eval_v2")}
DEFAULT_STILL_SET = "v1"


def eval_only_clips() -> tuple[Path, ...]:
    """The sample clips ``CLIPS_FILE`` marks ``"train": false``: held out whole, so a model's figures on
    them measure footage it never saw and no candidate was chosen on. Both trainings refuse them (by
    content, whatever a copy is named); empty where the samples are not installed."""
    if not CLIPS_FILE.is_file():
        return ()
    entries = json.loads(CLIPS_FILE.read_text())
    return tuple(SAMPLES_DIR / name for name, entry in entries.items() if entry.get("train", True) is False)
