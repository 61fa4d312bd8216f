"""The public API refuses wrong arguments at the door, naming the argument.

``ArgumentTypeError`` is also a TypeError and ``ArgumentError`` a ValueError, and both are
InputErrors (one line in the CLI and the add-on). Nothing is computed or written before the check.
"""

from __future__ import annotations


import numpy as np
import pytest

from gid.gid_engine.engine import Engine
from gid.gid_engine.errors import ArgumentError, ArgumentTypeError, GidError, InputError
from gid.gid_engine.media.imaging import from_array
from gid.gid_engine.prediction.predict import predict_motion
from gid.gid_engine.rendering.render import Timing, displacement_frames, render_frames
from gid.gid_engine.motion.sv_file import save_spectral_volume

from conftest import random_volume


@pytest.fixture
def still() -> np.ndarray:
    return np.full((24, 32, 3), 0.5, np.float32)


@pytest.fixture
def volume():
    vol = random_volume(h=24, w=32, seed=2)
    return vol.replace(coeffs=vol.coeffs * np.float32(0.2))


@pytest.mark.parametrize("kwargs, match", [
    ({"frames": 2.5}, r"^frames must be an integer, got float 2.5$"),
    ({"frames": "4"}, r"^frames must be an integer, got str '4'$"),
    ({"frames": True}, r"^frames must be an integer, got bool True$"),
    ({"fps": "30"}, r"^fps must be a number, got str '30'$"),
    ({"loop": "no"}, r"^loop must be True or False, got str 'no'$"),
])
def test_timing_refuses_wrong_types(kwargs, match):
    with pytest.raises(ArgumentTypeError, match=match) as info:
        Timing(**kwargs)
    assert isinstance(info.value, TypeError) and isinstance(info.value, InputError)


@pytest.mark.parametrize("kwargs, match", [
    ({"frames": 0}, r"^frames must be between 1 and 100,000, got 0$"),
    ({"fps": 1e-300}, r"^fps must be between 0.1 and 1000, got 1e-300$"),
    ({"fps": float("nan")}, r"^fps must be a finite number, got nan$"),
    ({"slowmo": 1e9}, r"^slow motion factor must be between 0.01 and 100, got 1e\+09$"),
])
def test_timing_refuses_values_out_of_range(kwargs, match):
    with pytest.raises(ArgumentError, match=match) as info:
        Timing(**kwargs)
    assert isinstance(info.value, ValueError)


def test_timing_keeps_numpy_integers_and_valid_values():
    t = Timing(fps=np.float32(24), frames=np.int64(12), slowmo=2)
    assert (t.fps, t.frames, t.slowmo) == (24.0, 12, 2.0) and type(t.frames) is int


@pytest.mark.parametrize("kwargs, error, match", [
    ({"threads": "two"}, ArgumentTypeError, r"^threads must be an integer, got str 'two'$"),
    ({"threads": 0}, ArgumentError, r"^threads must be between 1 and 1,024, got 0$"),
    ({"device": "tpu"}, ArgumentError, r"^device must be one of auto, gpu, cuda, cpu, got 'tpu'$"),
    ({"backend": None}, ArgumentTypeError, r"^backend must be one of auto, onnx, torch, got NoneType None$"),
    ({"renderer": "fast"}, ArgumentError, r"^renderer must be one of auto, neural, splat, got 'fast'$"),
    ({"log": "print"}, ArgumentTypeError, r"^log must be a function or None, got str 'print'$"),
])
def test_engine_constructor(kwargs, error, match):
    with pytest.raises(error, match=match):
        Engine(**kwargs)


def test_engine_render_frames_checks_every_argument(still, volume, tmp_path):
    engine = Engine(renderer="splat")
    cases = [
        ({"image": still, "volume": "m.gidsv"}, GidError, "spectral volume file not found: m.gidsv"),
        ({"image": still, "volume": 3}, ArgumentTypeError, "volume must be a SpectralVolume or the path of a .gidsv"),
        ({"image": 7, "volume": volume}, ArgumentTypeError,
         "image must be a path, a LoadedImage or an (H, W, C) array"),
        ({"image": still, "volume": volume, "timing": {"fps": 30}}, ArgumentTypeError,
         "timing must be a Timing (e.g. Timing(fps=30)), got dict"),
        ({"image": still, "volume": volume, "job": "cancel"}, ArgumentTypeError,
         "job must be a Job (gid_engine.progress.Job(); cancel with job.cancel()), got str 'cancel'"),
        ({"image": still, "volume": volume, "amplitude": -1}, ArgumentError, "amplitude must be at least 0, got -1"),
        ({"image": still, "volume": volume, "fit": "crop"}, ArgumentError, "fit must be one of check, stretch"),
    ]
    for kwargs, error, text in cases:
        with pytest.raises(error) as info:
            engine.render_frames(**kwargs)
        assert str(info.value).startswith(text), str(info.value)
    # a path to a motion file works as well as the volume itself
    save_spectral_volume(volume, tmp_path / "m.gidsv")
    frames = list(engine.render_frames(still, tmp_path / "m.gidsv", timing=Timing(frames=2)))
    same = list(engine.render_frames(still, volume, timing=Timing(frames=2)))
    assert len(frames) == 2 and all(np.array_equal(a, b) for a, b in zip(frames, same))


@pytest.mark.parametrize("kwargs, match", [
    ({"frames": "4"}, r"^frames must be an integer, got str '4'$"),
    ({"seed": -1}, r"^seed must be between 0 and 9,223,372,036,854,775,807, got -1$"),
    ({"seed": 2**64}, r"^seed must be between 0 and 9,223,372,036,854,775,807, got 18,446,744,073,709,551,616$"),
    ({"steps": 0}, r"^steps must be between 1 and 10,000, got 0$"),
    ({"fmt": "avi"}, r"^fmt must be one of png, exr, mp4, gif, got 'avi'$"),
    ({"overwrite": "yes"}, r"^overwrite must be True or False, got str 'yes'$"),
    ({"job": "cancel"}, r"^job must be a Job"),
    ({"init_strength": 0}, r"^init_strength must be greater than 0 and at most 1, got 0$"),
])
def test_engine_animate_checks_before_any_work(tmp_path, kwargs, match):
    from gid.exporters.opencv import cv2

    cv2.imwrite(str(tmp_path / "s.png"), np.full((24, 32, 3), 100, np.uint8))
    with pytest.raises(InputError, match=match):
        Engine().animate(tmp_path / "s.png", tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_engine_animate_needs_paths(tmp_path):
    with pytest.raises(ArgumentTypeError, match=r"^image_path must be a path \(str or pathlib.Path\), got ndarray"):
        Engine().animate(np.zeros((4, 4, 3)), tmp_path / "out")
    with pytest.raises(ArgumentTypeError, match=r"^out_dir must be a path"):
        Engine().animate(tmp_path / "s.png", None)


def test_module_functions_check_their_arguments(still, volume):
    image = from_array(still)
    with pytest.raises(ArgumentTypeError, match=r"^volume must be a SpectralVolume"):
        render_frames(image, "m.gidsv", splatter=None)
    with pytest.raises(ArgumentTypeError, match=r"^image must be a LoadedImage"):
        render_frames(still, volume, splatter=None)
    with pytest.raises(ArgumentTypeError, match=r"^width must be an integer, got float 32.0$"):
        displacement_frames(volume, 32.0, 24)
    with pytest.raises(ArgumentTypeError, match=r"^timing must be a Timing"):
        displacement_frames(volume, 32, 24, timing=30)
    with pytest.raises(ArgumentError, match=r"^seed must be between 0 and"):
        predict_motion(image, seed=-5)
    with pytest.raises(ArgumentTypeError, match=r"^steps must be an integer, got float 2.5$"):
        predict_motion(image, steps=2.5)


def test_valid_calls_are_unchanged(still, volume):
    """The checks change no valid result: the same frames with ints, numpy ints and floats."""
    engine = Engine(renderer="splat", threads=np.int64(1))
    a = list(engine.render_frames(still, volume, timing=Timing(frames=3, fps=30)))
    b = list(engine.render_frames(from_array(still), volume, timing=Timing(frames=np.int32(3), fps=np.float64(30))))
    assert len(a) == 3 and all(np.array_equal(x, y) for x, y in zip(a, b))
