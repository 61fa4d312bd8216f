"""The extension as Blender installed it from the zip: the code, the wheels and the Python they fit.

Runs in the installed-extension legs of ``make test`` (``tools/blender_matrix.py``), where
``GID_INSTALLED_EXTENSION`` names the package Blender installed and ``tests/installed`` makes
``gid`` resolve to it; skipped in the source-tree environment.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

PACKAGE = os.environ.get("GID_INSTALLED_EXTENSION", "")
pytestmark = pytest.mark.skipif(not PACKAGE, reason="runs in the installed-extension legs (tools/blender_matrix.py)")


def _site_packages() -> Path:
    import bpy

    return Path(bpy.utils.user_resource("EXTENSIONS", path=".local"), "lib",
                "python%d.%d" % sys.version_info[:2], "site-packages")


def _filename_tags(wheel: str) -> set[str]:
    """The tags a wheel file name stands for (its compressed tag sets expanded)."""
    python, abi, platform = wheel[:-4].split("-")[-3:]
    return {f"{p}-{a}-{s}" for p in python.split(".") for a in abi.split(".") for s in platform.split(".")}


def _wheel_tags(dist_info: Path) -> list[str]:
    return [ln.split(":", 1)[1].strip() for ln in (dist_info / "WHEEL").read_text().splitlines()
            if ln.startswith("Tag:")]


def test_gid_is_the_installed_extension_not_the_source_tree():
    import addon_utils
    import bpy
    import gid
    from gid import addon
    from gid.gid_engine import runtime

    extensions = Path(bpy.utils.user_resource("EXTENSIONS"))
    assert gid.__name__ == PACKAGE and addon.__name__ == f"{PACKAGE}.addon"
    assert Path(gid.__file__).is_relative_to(extensions / "user_default" / "gid")
    assert Path(gid.__file__).is_relative_to(os.environ["BLENDER_USER_RESOURCES"])
    assert addon_utils.check(PACKAGE) == (True, True)
    assert runtime.asset_path(runtime.SPLAT_ONNX).is_relative_to(extensions)  # shipped assets came along
    repo = Path(__file__).resolve().parents[1]
    assert not any(Path(getattr(m, "__file__", None) or "/").is_relative_to(repo / "gid_engine")
                   for m in list(sys.modules.values()))


def test_wheels_installed_are_the_zips_for_this_python():
    """Blender installed exactly one wheel per bundled package, the one whose tags fit its Python."""
    import cv2
    import numpy
    import onnxruntime

    site = _site_packages()
    with zipfile.ZipFile(os.environ["GID_TEST_EXTENSION_ZIP"]) as z:
        listed = [w.rsplit("/", 1)[-1] for w in tomllib.loads(z.read("blender_manifest.toml").decode())["wheels"]]
    cp = "cp%d%d" % sys.version_info[:2]
    installed = {d.name.split("-")[0].lower(): d for d in site.glob("*.dist-info")}
    assert set(installed) == {"onnxruntime", "flatbuffers", "packaging", "protobuf", "opencv_python_headless"}
    for name, dist_info in installed.items():
        version = dist_info.name[len(name) + 1:-len(".dist-info")]
        tags = _wheel_tags(dist_info)
        matching = [w for w in listed if w.lower().startswith(f"{name}-{version}-") and _filename_tags(w) & set(tags)]
        assert len(matching) == 1, (name, tags, listed)
        assert any(t.split("-")[0] in (cp, "py3") or t.split("-")[1] == "abi3" for t in tags), tags
    assert _wheel_tags(installed["onnxruntime"]) and all(t.startswith(f"{cp}-{cp}-")
                                                         for t in _wheel_tags(installed["onnxruntime"]))
    # The packages the extension uses come from there, beside Blender's own numpy.
    for module in (cv2, onnxruntime):
        assert Path(module.__file__).is_relative_to(site), module.__file__
    assert not Path(numpy.__file__).is_relative_to(site)
    assert int(numpy.__version__.split(".")[0]) == (1 if sys.version_info[:2] == (3, 11) else 2)
    assert importlib.util.find_spec("torch") is None


def test_opencv_and_onnxruntime_work_with_this_numpy():
    """The bundled OpenCV and onnxruntime compute with Blender's numpy (1.26 or 2.x): real numbers."""
    import numpy as np

    from gid.exporters.opencv import cv2
    from gid.gid_engine.motion.extract import flow_function
    from gid.gid_engine.rendering.render import make_splatter

    rng = np.random.default_rng(0)
    a = cv2.GaussianBlur(rng.random((64, 80)).astype(np.float32), (0, 0), 2.0)
    a = cv2.normalize(a, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    b = np.roll(a, 3, axis=1)  # content moves 3 px right
    flow = flow_function()(a, b)
    assert abs(float(np.median(flow[8:-8, 8:-8, 0])) - 3.0) < 0.5
    splat = make_splatter("onnx", "cpu", renderer="splat")
    image = rng.random((3, 16, 20), dtype=np.float32)
    shift = np.zeros((2, 16, 20), np.float32)
    shift[0] = 1.0
    out = splat(image, shift, np.zeros((16, 20), np.float32))
    assert np.abs(out[:, :, 1:] - image[:, :, :-1]).max() < 1e-5  # every pixel moved one to the right


# The platform names Python's sysconfig gives inside each platform's Blender (macOS builds
# target 11.2; Blender's filter ignores the macOS version and matches the architecture).
SYSCONFIG_PLATFORMS = {"linux-x64": "linux-x86_64", "windows-x64": "win-amd64", "macos-arm64": "macosx-11.2-arm64"}


@pytest.mark.parametrize("platform", sorted(SYSCONFIG_PLATFORMS))
def test_this_blenders_wheel_selection_picks_one_set_on_every_platform(platform, monkeypatch):
    """Each platform's zip, read by this Blender's own wheel filter as if it ran on that platform:
    exactly one wheel per bundled package, onnxruntime the build for this Blender's Python.

    Linux is also installed for real (the other tests); Windows and macOS cannot be here, so this
    is how their zips meet each Blender release's own selection code."""
    import sysconfig

    from bl_pkg.bl_extension_ops import _extensions_wheel_filter_for_this_system

    zips = json.loads(os.environ.get("GID_TEST_PLATFORM_ZIPS") or "{}")
    if platform not in zips:
        pytest.skip(f"no {platform} zip was built for this run")
    with zipfile.ZipFile(zips[platform]) as z:
        manifest = tomllib.loads(z.read("blender_manifest.toml").decode())
    assert manifest["platforms"] == [platform]
    monkeypatch.setattr(sysconfig, "get_platform", lambda: SYSCONFIG_PLATFORMS[platform])
    chosen = [w.rsplit("/", 1)[-1] for w in _extensions_wheel_filter_for_this_system(manifest["wheels"])]
    packages = sorted(w.split("-")[0].lower() for w in chosen)
    assert packages == ["flatbuffers", "onnxruntime", "opencv_python_headless", "packaging", "protobuf"], chosen
    cp = "cp%d%d" % sys.version_info[:2]
    (onnxruntime,) = [w for w in chosen if w.startswith("onnxruntime-")]
    assert onnxruntime.split("-")[2:4] == [cp, cp], onnxruntime
    assert len(manifest["wheels"]) > len(chosen)  # the other Python's onnxruntime is in the zip, left alone
