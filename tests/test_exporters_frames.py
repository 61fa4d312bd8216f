"""PNG/EXR encoding bit-exactness, colour transfer functions, frame naming, displacement maps."""

from __future__ import annotations

import numpy as np
import pytest

from gid.exporters.colors import linear_to_srgb, srgb_to_linear
from gid.exporters.displacement import displace_node_vectors, encode_displacement_exr
from gid.exporters.errors import ExportError, FileFormatError
from gid.exporters.frames import decode_frame, encode_exr, encode_frame, encode_png, frame_name

rng = np.random.default_rng(1234)


def image(h=5, w=7, c=3, lo=-0.2, hi=1.2):
    """Random pixels, a little outside [0, 1] so clipping is exercised, plus exact half steps."""
    x = rng.uniform(lo, hi, (h, w, c)).astype(np.float32)
    x.flat[:4] = [0.0, 1.0, 0.5 / 255, 1.5 / 255]
    return x


def expected_uint(x, depth):
    maxval = 2**depth - 1
    q = np.floor(np.clip(x.astype(np.float64), 0, 1) * maxval + 0.5)
    return q.astype(np.uint8 if depth == 8 else np.uint16)


def test_frame_name():
    assert frame_name("shot", 0, "png") == "shot_0001.png"
    assert frame_name("shot", 41, ".exr") == "shot_0042.exr"
    assert frame_name("shot", 0, "png", digits=6, start=101) == "shot_000101.png"


@pytest.mark.parametrize("depth", [8, 16])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_png_round_trip_bit_exact(depth, channels):
    x = image(c=channels)
    back = decode_frame(encode_png(x, depth))
    want = expected_uint(x, depth)
    assert back.dtype == want.dtype and back.shape == want.shape
    np.testing.assert_array_equal(back, want)
    if depth == 8:
        assert back.flat[2] == 1 and back.flat[3] == 2  # 0.5/255 and 1.5/255 round half up


def test_png_channel_order_is_rgb():
    x = np.zeros((1, 1, 3), np.float32)
    x[0, 0] = [1.0, 0.0, 0.0]
    assert decode_frame(encode_png(x)).tolist() == [[[255, 0, 0]]]


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_exr_float_exact_and_half_matches_numpy(channels):
    x = (rng.standard_normal((6, 4, channels)) * 10).astype(np.float32)
    np.testing.assert_array_equal(decode_frame(encode_exr(x, "float")), x)
    half = decode_frame(encode_exr(x, "half"))
    np.testing.assert_array_equal(half, x.astype(np.float16).astype(np.float32))


def test_exr_two_channels_padded_with_zero():
    x = rng.standard_normal((3, 5, 2)).astype(np.float32)
    back = decode_frame(encode_exr(x, "float"))
    np.testing.assert_array_equal(back[..., :2], x)
    np.testing.assert_array_equal(back[..., 2], 0)


def test_srgb_known_values_and_round_trip():
    assert srgb_to_linear(np.float32(0.5)) == pytest.approx(0.21404114, abs=1e-7)
    assert linear_to_srgb(np.float32(0.21404114)) == pytest.approx(0.5, abs=1e-6)
    assert srgb_to_linear(np.float32(0.04045)) == pytest.approx(0.04045 / 12.92, abs=1e-9)
    x = np.linspace(0, 1, 10001, dtype=np.float32)
    assert np.abs(linear_to_srgb(srgb_to_linear(x)) - x).max() <= 1e-6
    assert np.abs(srgb_to_linear(linear_to_srgb(x)) - x).max() <= 1e-6


def test_alpha_is_not_converted():
    x = np.full((2, 2, 4), 0.5, np.float32)
    lin = srgb_to_linear(x)
    np.testing.assert_allclose(lin[..., :3], 0.21404114, atol=1e-7)
    np.testing.assert_array_equal(lin[..., 3], 0.5)
    np.testing.assert_allclose(srgb_to_linear(x, has_alpha=False), 0.21404114, atol=1e-7)  # all 4 converted


def test_encode_frame_colour_convention():
    lin = np.full((2, 2, 3), 0.21404114, np.float32)
    png = decode_frame(encode_frame(lin, "png", 8, source_linear=True))
    assert (png == 128).all()  # linear 0.214 -> sRGB 0.5 -> floor(127.5 + 0.5)
    srgb = np.full((2, 2, 3), 0.5, np.float32)
    exr = decode_frame(encode_frame(srgb, "exr", "float", source_linear=False))
    np.testing.assert_allclose(exr, 0.21404114, atol=1e-7)
    np.testing.assert_array_equal(decode_frame(encode_frame(srgb, "exr", "float", source_linear=True)), srgb)


def test_bad_inputs_give_export_errors(tmp_path):
    with pytest.raises(ExportError, match="shape"):
        encode_png(np.zeros((4, 4, 2), np.float32))
    with pytest.raises(ExportError, match="float"):
        encode_png(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ExportError, match="depth"):
        encode_frame(np.zeros((4, 4, 3), np.float32), "png", "half")
    with pytest.raises(ExportError, match="format"):
        encode_frame(np.zeros((4, 4, 3), np.float32), "jpg", 8)
    with pytest.raises(FileFormatError, match="not a readable"):
        decode_frame(b"not an image")
    with pytest.raises(FileFormatError, match="cannot read"):
        decode_frame(tmp_path / "missing.png")


def test_displacement_exr_channels():
    field = (rng.standard_normal((2, 4, 6)) * 20).astype(np.float32)
    back = decode_frame(encode_displacement_exr(field))
    np.testing.assert_array_equal(back[..., 0], field[0])
    np.testing.assert_array_equal(back[..., 1], field[1])
    np.testing.assert_array_equal(back[..., 2], 0)


def test_displace_node_vectors_flip_y_and_scale():
    field = np.zeros((2, 3, 4), np.float32)
    field[0, 1, 2], field[1, 1, 2] = 6.0, -3.0
    v = displace_node_vectors(field, 6.0)
    assert v.shape == (3, 4, 3) and v.dtype == np.float32
    assert v[1, 2].tolist() == [1.0, 0.5, 0.0]
    assert np.abs(v).max() <= 1.0
    with pytest.raises(ExportError, match="positive"):
        displace_node_vectors(field, 0.0)
