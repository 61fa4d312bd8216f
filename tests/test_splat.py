"""Softmax splatting: the torch reference, its ONNX export and the onnxruntime path."""

import numpy as np
import pytest
import torch

from gid.gid_tools.export_onnx import export_splat_onnx
from gid.gid_engine.runtime import OnnxSplatter, asset_path, create_session
from gid.gid_tools.splat_torch import SoftmaxSplatRenderer, TorchSplatter, softmax_splat

from conftest import textured_image


def _inputs(c, h, w, seed=0, scale=3.0):
    rng = np.random.default_rng(seed)
    image = textured_image(h, w, seed, channels=c).transpose(2, 0, 1).copy()
    flow = (rng.normal(size=(2, h, w)) * scale).astype(np.float32)
    import cv2

    flow = np.stack([cv2.GaussianBlur(f, (0, 0), 3) for f in flow]) * 3  # smooth motion
    z = np.sqrt(flow[0] ** 2 + flow[1] ** 2).astype(np.float32)
    return image, flow.astype(np.float32), z


def test_zero_flow_returns_the_image():
    image, _, z = _inputs(3, 24, 32)
    out = TorchSplatter()(image, np.zeros((2, 24, 32), np.float32), z)
    np.testing.assert_allclose(out, image, atol=1e-6)


def test_integer_translation_moves_pixels_exactly():
    image, _, _ = _inputs(3, 30, 40)
    flow = np.zeros((2, 30, 40), np.float32)
    flow[0] = 3.0  # 3 px right
    flow[1] = -2.0  # 2 px up
    out = TorchSplatter()(image, flow, np.zeros((30, 40), np.float32))
    np.testing.assert_allclose(out[:, 0:28, 3:40], image[:, 2:30, 0:37], atol=1e-6)
    # the uncovered strips are filled, with values from the image's range, not zeros
    assert out[:, :, :3].min() >= image.min() - 1e-6 and out[:, :, :3].mean() > 0.1


def test_softmax_weights_make_the_moving_pixel_win():
    values = torch.tensor([[[[0.0, 1.0, 0.0]]]])  # the middle pixel is bright
    flow = torch.zeros(1, 2, 1, 3)
    flow[0, 0, 0, 1] = 1.0  # ... and moves onto the right pixel
    z = torch.tensor([[[[0.0, 10.0, 0.0]]]])
    summed, weight, coverage = softmax_splat(values, flow, z)
    out = summed / weight
    assert out[0, 0, 0, 2].item() == pytest.approx(1.0, abs=1e-4)  # foreground wins the overlap
    assert coverage[0, 0, 0, 1].item() == pytest.approx(0.0)  # it left a hole behind
    assert coverage[0, 0, 0, 2].item() == pytest.approx(2.0)


def test_alpha_and_extra_channels_are_splatted_too():
    image, flow, z = _inputs(4, 20, 28)
    out = TorchSplatter()(image, flow, z)
    assert out.shape == (4, 20, 28)


@pytest.mark.parametrize("c,h,w", [(3, 64, 96), (4, 97, 161), (2, 7, 5), (3, 1, 1), (3, 288, 512)])
def test_onnxruntime_matches_torch_reference(c, h, w):
    image, flow, z = _inputs(c, h, w, seed=h)
    ref = TorchSplatter()(image, flow, z)
    out = OnnxSplatter(device="cpu")(image, flow, z)
    assert out.shape == ref.shape
    assert np.abs(out - ref).max() <= 1e-4


def _graph_summary(path) -> tuple:
    """What an ONNX file computes, without what only names the exporter: opsets, the operators
    in order with their attributes, the inputs, outputs and constants."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    g = model.graph
    ops = [(n.op_type, n.domain, sorted((a.name, onnx.helper.get_attribute_value(a).__repr__()) for a in n.attribute))
           for n in g.node]
    consts = sorted((i.name, numpy_helper.to_array(i).tobytes()) for i in g.initializer)
    return (sorted((o.domain, o.version) for o in model.opset_import), ops, consts,
            [(i.name, str(i.type)) for i in g.input], [(o.name, str(o.type)) for o in g.output])


def test_shipped_onnx_graph_is_what_the_exporter_writes(tmp_path):
    """Same graph and bit-identical frames; the file's bytes may differ where only the exporter's
    version stamp does (they are equal for the pinned torch/onnx pair, not across releases)."""
    fresh = export_splat_onnx(tmp_path / "splat.onnx")
    image, flow, z = _inputs(3, 40, 50, seed=3)
    shipped = OnnxSplatter(device="cpu")(image, flow, z)
    regenerated = OnnxSplatter(device="cpu", model=fresh)(image, flow, z)
    assert np.abs(shipped - regenerated).max() == 0.0
    assert _graph_summary(fresh) == _graph_summary(asset_path("softmax_splat.onnx"))


def test_gpu_request_without_cuda_falls_back_to_cpu_with_a_message():
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has a CUDA provider")
    messages = []
    _, info = create_session(asset_path("softmax_splat.onnx"), device="gpu", log=messages.append)
    assert info.provider == "CPUExecutionProvider"
    assert "running on the CPU" in info.message and messages == [info.message]


def test_missing_model_file_is_a_clear_error(tmp_path):
    from gid.gid_engine.errors import GidError

    with pytest.raises(GidError, match="model file missing"):
        create_session(tmp_path / "nope.onnx")


def test_module_forward_is_batched():
    image, flow, z = _inputs(3, 16, 16)
    m = SoftmaxSplatRenderer()
    batch = m(torch.from_numpy(np.stack([image, image])), torch.from_numpy(np.stack([flow, -flow])),
              torch.from_numpy(np.stack([z, z]))[:, None])
    single = m(torch.from_numpy(image[None]), torch.from_numpy(-flow[None]), torch.from_numpy(z[None, None]))
    np.testing.assert_allclose(batch[1:].numpy(), single.numpy(), atol=1e-6)
