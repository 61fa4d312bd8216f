"""Where the engine's shipped data files live (ONNX graphs, weights, their indexes, statistics).

Each model is a checksummed folder (``gid_engine/model_folder.py``); the runtime reads the ONNX
ones, the development tooling (``gid_tools``) writes them and reads the torch weights beside them.
"""

from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent
PRIOR_DIR = ASSETS_DIR / "motion_prior"  # the prior's torch weights (tooling only; not in the extension)
PRIOR_ONNX_DIR = ASSETS_DIR / "motion_prior_onnx"  # their ONNX export, what the runtime samples with
RENDERER_DIR = ASSETS_DIR / "renderer"  # the neural renderer: ONNX graphs + torch weights
STATIC_FLOW_DIR = ASSETS_DIR / "static_flow"  # the learned Eulerian baseline (gid eval only)
