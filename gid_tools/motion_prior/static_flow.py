"""Training and using the learned Eulerian baseline (``models/static_flow.py``).

    gid train static-flow --pairs 800 --steps 1500 --out checkpoints/static_flow --export

Targets: ``M(p)`` of each training pair's reference volume (``baselines.static_flow_field``),
canonicalised to ``M_x >= 0``; with ``--sim`` a share of the pairs are simulated views of
``gid make-data`` with their exact volumes instead of synthetic ones; ``--init-from`` starts from a
trained network instead of random weights; ``--teacher`` replaces every target by the mean of trained
networks' output fields for the same image (distillation: one network that answers like an ensemble of
them, so the prior's one-network condition can carry the ensemble); loss L1 in pixels; images and targets
flipped left-right at random (a teacher's target for a mirrored image is its output for that image); the
step runs in ``training.TrainLoop`` (resume, time budget, ``loss.csv``, checkpoints).
Weights go to ``gid_engine/assets/static_flow/`` (``static_flow.safetensors`` + ``static_flow.json``,
a checksummed model folder with the training summary); ``gid eval`` adds the "static flow (learned)" row
when they are there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from ...gid_engine.errors import FormatError
from ...gid_engine.repo_data import DEFAULT_STILL_SET
from ...gid_engine.motion.spectral_volume import SpectralVolume
from ..training import LogPoint, TrainLoop, checkpoint_to_resume, fill_parallel, make_accelerator, refuse_other_data
from .data.synthetic import still_splits
from .models.static_flow import StaticFlowNet
from ...gid_engine.assets import STATIC_FLOW_DIR
from ...gid_engine.errors import InputError, MissingWeightsError
from ...gid_engine.model_folder import STATIC_FLOW, list_files, make_index, read_index, write_index
from .weights import load_state_dict, save_state_dict

WEIGHTS_DIR = STATIC_FLOW_DIR
INDEX = STATIC_FLOW.index_name


@dataclass
class StaticFlowTrainArgs:
    steps: int = 1500
    out: Path = Path("checkpoints/static_flow")
    pairs: int = 800
    batch: int = 8
    lr: float = 1e-3
    data_seed: int = 0
    workers: int = 1
    time_budget: Optional[float] = None
    resume: bool = False
    export: Optional[Path] = None
    threads: Optional[int] = None
    ckpt_every: int = 500
    log_every: int = 50  # loss.csv / log interval in steps
    stills: str = DEFAULT_STILL_SET  # still set of the synthetic pairs (``repo_data.STILL_SETS``)
    sim: tuple[str, ...] = ()  # folders of simulated shards whose train views replace a share of the pairs
    sim_fraction: float = 0.5
    init_from: Optional[Path] = None  # a static-flow weights folder to start from
    teachers: tuple[Path, ...] = ()  # static-flow weights folders whose mean output field is the target


def canonical_field(ref: SpectralVolume) -> np.ndarray:
    """``(2, H, W)`` float32 ``M`` of ``ref`` with the axis sign chosen so that ``M_x >= 0``."""
    from ...gid_engine.prediction.baselines import static_flow_field

    m = static_flow_field(ref)
    flip = (m[0] < 0) | ((m[0] == 0) & (m[1] < 0))
    m[:, flip] *= -1.0
    return m.astype(np.float32)


class _TargetMaker:
    """Pair ``i`` as (image in [-1, 1], canonical ``M``); picklable for the data workers. With ``views``
    (simulated shards) the pairs ``is_sim_pair`` picks are simulated views instead of synthetic ones."""

    def __init__(self, seed: int, split: str = "train", views=None, sim_fraction: float = 0.0) -> None:
        self.seed = seed
        self.split = split
        self.views, self.sim_fraction = views, sim_fraction

    def __call__(self, i: int) -> dict[str, np.ndarray]:
        from .data import synthetic_pair
        from .data.simulated import is_sim_pair, sim_pick

        if self.views is not None and is_sim_pair(self.seed, self.split, i, self.sim_fraction):
            image, vol = self.views.view(sim_pick(self.views, self.seed, self.split, i)[0])
            if image.shape[:2] != (160, 256):
                raise InputError(f"the simulated views are {image.shape[1]}x{image.shape[0]}; the static-flow "
                                 f"network trains on 256x160 (gid make-data --size 256x160)")
        else:
            image, vol = synthetic_pair(i, seed=self.seed, split=self.split)
        return {"images": (image.transpose(2, 0, 1) * 2.0 - 1.0).astype(np.float32),
                "fields": canonical_field(vol.anchored())}


def train_static_flow(args: StaticFlowTrainArgs, log: Callable[[str], None] = print) -> dict:
    stage_dir = Path(args.out) / "static-flow"
    ckpt = checkpoint_to_resume(stage_dir, args.resume, args.steps, args.threads)
    data_id = {"data_seed": args.data_seed, "pairs": args.pairs, "stills": args.stills}
    from .data.simulated import sim_data_key

    data_id["sim"] = sim_data_key(tuple(args.sim), args.sim_fraction)  # [] without simulated data
    views = None
    if args.sim:
        from ..simdata.datasets import SimViews

        views = SimViews(args.sim, "train")
    teachers = load_teachers(tuple(Path(t) for t in args.teachers))
    data_id["teacher"] = [weights_sha256(Path(t))[:12] for t in args.teachers]  # [] without teachers
    refuse_other_data(ckpt, data_id, defaults={"stills": DEFAULT_STILL_SET, "sim": [], "teacher": []})
    start = None
    if args.init_from is not None and ckpt is None:
        start = load_static_flow(Path(args.init_from))
        if start is None:
            raise InputError(f"--init-from: no static-flow weights in {args.init_from}")
    accel = make_accelerator()
    say = log if accel.is_main_process else (lambda _m: None)
    data = {"images": torch.empty((args.pairs, 3, 160, 256)), "fields": torch.empty((args.pairs, 2, 160, 256))}
    fill_parallel(_TargetMaker(args.data_seed, still_splits(args.stills)[0], views, args.sim_fraction), args.pairs,
                  data, args.workers, log=say, label="pairs")
    if teachers:
        data["fields"] = teacher_fields(teachers, data["images"], accel.device)
        data["mirrored"] = teacher_fields(teachers, data["images"].flip(-1), accel.device)
        say(f"static-flow: targets are the mean output of {len(teachers)} teacher networks")
    model = StaticFlowNet() if start is None else start.train()
    if start is not None:
        say(f"static-flow: warm start from {args.init_from}")
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    loop = TrainLoop(accel, model, optimizer, stage_dir, "static-flow", steps=args.steps, lr=args.lr,
                     data_seed=args.data_seed, resume=ckpt, time_budget=args.time_budget, log_every=args.log_every,
                     ckpt_every=args.ckpt_every, say=say)
    model = loop.model
    flip_sign = torch.tensor([-1.0, 1.0]).view(1, 2, 1, 1)

    def step_fn(step: int, rng: np.random.Generator) -> tuple[torch.Tensor, None]:
        idx = torch.as_tensor(rng.integers(args.pairs, size=args.batch))
        img, fld = data["images"][idx], data["fields"][idx]
        flips = torch.as_tensor(rng.random(args.batch) < 0.5)
        img = torch.where(flips.view(-1, 1, 1, 1), img.flip(-1), img)
        # mirrored: M_x changes sign, so the canonical field becomes (M_x, -M_y)
        mirrored = data["mirrored"][idx] if "mirrored" in data else fld.flip(-1) * flip_sign * -1.0
        fld = torch.where(flips.view(-1, 1, 1, 1), mirrored, fld)
        return (model(img.to(accel.device)).float() - fld.to(accel.device)).abs().mean(), None

    def report(point: LogPoint) -> tuple[dict, str]:
        last = point.losses[-1]  # the row's loss is its last step's (an L1 in pixels)
        return {"loss": f"{last:.6f}"}, f"static-flow: step {point.step}/{point.total} L1 {last:.4f} px"

    result = loop.run(step_fn, report, {"stage": "static-flow", "steps": args.steps} | data_id)
    summary = {"stage": "static-flow", "steps": result.total, "start": result.start, **data_id, "batch": args.batch,
               "lr": args.lr, **({"init_from": str(args.init_from)} if args.init_from else {}),
               **({"teachers": [str(t) for t in args.teachers]} if args.teachers else {}), **result.tally,
               "last_loss": result.last_loss, "device": result.device}
    summary = loop.finish(result, summary)
    if accel.is_main_process and args.export is not None:
        export_static_flow(accel.unwrap_model(model), Path(args.export), summary)
        say(f"static-flow: exported to {args.export}")
    return summary


def load_teachers(folders: tuple[Path, ...]) -> list[StaticFlowNet]:
    """The static-flow networks in ``folders``; a folder without one is a one-line error."""
    nets = []
    for folder in folders:
        net = load_static_flow(folder)
        if net is None:
            raise InputError(f"--teacher: no static-flow weights in {folder}")
        nets.append(net)
    return nets


def weights_sha256(folder: Path) -> str:
    """The recorded checksum of the static-flow weights in ``folder`` (identifies a teacher by content)."""
    return str(read_index(folder, STATIC_FLOW)["files"][0]["sha256"])


class MeanOfNetworks(torch.nn.Module):
    """The mean of several static-flow networks' output fields (an ensemble, not a weight average)."""

    def __init__(self, members: list[torch.nn.Module]) -> None:
        super().__init__()
        self.members = torch.nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x).float() for m in self.members]).mean(0)


def teacher_fields(teachers: list[StaticFlowNet], images: torch.Tensor, device: torch.device | str = "cpu",
                   batch: int = 16) -> torch.Tensor:
    """``(N, 2, H, W)``: the mean of the teachers' output fields for ``images`` (N, 3, H, W) in [-1, 1].

    The raw outputs are averaged, not re-canonicalised, so the student learns the field the ensemble
    gives (``M_x`` may dip below zero where the members' axes disagree)."""
    mean = MeanOfNetworks(teachers).to(device).eval()
    out = torch.empty((images.shape[0], 2, *images.shape[2:]))
    with torch.no_grad():
        for s in range(0, images.shape[0], batch):
            out[s : s + batch] = mean(images[s : s + batch].to(device)).cpu()
    return out


def export_static_flow(model: StaticFlowNet, folder: Path, summary: dict) -> None:
    """Write the network's weights and its index (kind ``static_flow``) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    files = save_state_dict({k: v.detach().cpu() for k, v in model.state_dict().items()}, folder, "static_flow")
    index = make_index(STATIC_FLOW, ["static_field", "torch_weights"], list_files(folder, files, STATIC_FLOW),
                       width=model.width, training=summary)
    write_index(folder, STATIC_FLOW, index)


def load_static_flow(folder: Path = WEIGHTS_DIR) -> Optional[StaticFlowNet]:
    """The shipped baseline network, or None when it is not installed; a damaged file is an error."""
    try:
        doc = read_index(Path(folder), STATIC_FLOW, needs=["static_field"])
    except MissingWeightsError:
        return None
    model = StaticFlowNet(int(doc.get("width", 32)))
    try:
        model.load_state_dict(load_state_dict(Path(folder), [e["name"] for e in doc["files"]]))
    except RuntimeError:
        raise FormatError(f"{Path(folder) / INDEX} does not describe the network its weights hold") from None
    return model.eval()


def network_input(image: np.ndarray) -> torch.Tensor:
    """``(3, H, W)`` float32 in [-1, 1]: what the network takes for ``image`` (H, W, 3+) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image[:, :, :3].transpose(2, 0, 1) * 2.0 - 1.0, dtype=np.float32))


def learned_static_flow(model: StaticFlowNet, image: np.ndarray, like: SpectralVolume, k_star: int) -> SpectralVolume:
    """The baseline's volume for ``image`` (H, W, 3) in [0, 1], shaped like ``like``."""
    with torch.no_grad():
        m = model(network_input(image)[None].to(next(model.parameters()).device))[0].float().cpu().numpy()
    coeffs = np.zeros_like(like.coeffs)
    if 0 < k_star < like.K:  # A sin(w t) has S_k = -i A / 2
        coeffs[k_star, 1] = -0.5 * m[0]
        coeffs[k_star, 3] = -0.5 * m[1]
    return like.replace(coeffs=coeffs, source="baseline:static-flow-learned")
