"""`gid build-extension`: manifest checks, zip contents, wheel handling, and a real install in bpy.

No network: wheel tests use a pre-filled fake cache with ``--offline`` (pip is forbidden), and the
pip command line is checked with ``subprocess.run`` replaced. The install and validation tests run
the real ``bpy`` module in a fresh Python process whose user folders are temp folders.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from pathlib import Path

import pytest

from gid.gid_engine import __version__
from gid.gid_tools import packaging as pk
from gid.gid_engine.cli import main
from gid.gid_engine.errors import InputError

REPO = Path(__file__).resolve().parents[1]

GOOD = textwrap.dedent('''\
    schema_version = "1.0.0"
    id = "gid"
    version = "0.1.0"
    name = "GID: Generative Image Dynamics"
    tagline = "Animate still backdrops with oscillating motion"
    maintainer = "gid developers"
    type = "add-on"
    tags = ["Animation"]
    blender_version_min = "4.2.0"
    license = ["SPDX:GPL-3.0-or-later"]

    [permissions]
    files = "Read images and videos"
''')


def _bpy_available() -> bool:
    try:
        import importlib.util

        return importlib.util.find_spec("bpy") is not None
    except (ImportError, ValueError):
        return False


needs_bpy = pytest.mark.skipif(not _bpy_available(), reason="the bpy module is not installed")


def write_manifest(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / pk.MANIFEST
    path.write_text(text, encoding="utf-8")
    return path


def zip_manifest(zip_path: Path) -> dict:
    with zipfile.ZipFile(zip_path) as z:
        return tomllib.loads(z.read(pk.MANIFEST).decode("utf-8"))


def fake_wheel(folder: Path, filename: str) -> Path:
    """A small but well-formed wheel: only its .dist-info (METADATA, WHEEL, RECORD)."""
    name, version = filename.split("-")[:2]
    info = f"{name}-{version}.dist-info"
    tag = "-".join(filename[:-4].split("-")[-3:])
    path = folder / filename
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        z.writestr(f"{info}/WHEEL", f"Wheel-Version: 1.0\nGenerator: gid-test\nRoot-Is-Purelib: false\nTag: {tag}\n")
        z.writestr(f"{info}/RECORD", f"{info}/METADATA,,\n{info}/WHEEL,,\n{info}/RECORD,,\n")
    return path


FAKE_WHEELS = {
    "linux-x64": [
        "onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl",
        "flatbuffers-25.12.19-py2.py3-none-any.whl",
        "packaging-26.4-py3-none-any.whl",
        "protobuf-6.33.6-cp39-abi3-manylinux2014_x86_64.whl",
        "opencv_python_headless-4.11.0.86-cp37-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "onnxruntime-1.32.0-cp313-cp313-manylinux_2_28_x86_64.whl",  # Blender 5.1+ (Python 3.13)
    ],
    "windows-x64": [
        "onnxruntime-1.32.0-cp311-cp311-win_amd64.whl",
        "flatbuffers-25.12.19-py2.py3-none-any.whl",
        "packaging-26.4-py3-none-any.whl",
        "protobuf-6.33.6-cp310-abi3-win_amd64.whl",
        "opencv_python_headless-4.11.0.86-cp37-abi3-win_amd64.whl",
        "onnxruntime-1.32.0-cp313-cp313-win_amd64.whl",
    ],
}


@pytest.fixture(scope="module")
def nowheels_zip(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    (built,) = pk.build_extension(out, wheels=False)
    return built.path


@pytest.fixture(scope="module")
def fake_cache(tmp_path_factory) -> Path:
    cache = tmp_path_factory.mktemp("wheels")
    for names in FAKE_WHEELS.values():
        for name in names:
            if not (cache / name).exists():
                fake_wheel(cache, name)
    # Wheels that must not be picked: other platform, other Python, newer glibc, other version.
    fake_wheel(cache, "onnxruntime-1.32.0-cp311-cp311-macosx_14_0_arm64.whl")
    fake_wheel(cache, "onnxruntime-1.32.0-cp312-cp312-manylinux_2_28_x86_64.whl")
    fake_wheel(cache, "onnxruntime-1.32.0-cp314-cp314-manylinux_2_28_x86_64.whl")
    fake_wheel(cache, "protobuf-7.36.2-cp310-abi3-manylinux2014_x86_64.whl")
    fake_wheel(cache, "numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
    return cache


@pytest.fixture(scope="module")
def wheel_zips(tmp_path_factory, fake_cache) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist-wheels")
    rc = main(["build-extension", "-o", str(out), "--platform", "linux-x64", "windows-x64",
               "--wheels-cache", str(fake_cache), "--offline"])
    assert rc == 0
    return {p: out / f"gid-{__version__}-{p.replace('-', '_')}.zip" for p in FAKE_WHEELS}


def no_pip(*args, **kwargs):  # pragma: no cover - a failure if ever called
    raise AssertionError(f"pip must not run here: {args!r}")


# --------------------------------------------------------------------------------- manifest
def test_repo_manifest_validates():
    data = pk.validate_manifest(REPO / pk.MANIFEST)
    assert data["id"] == "gid" and data["type"] == "add-on"
    assert data["version"] == __version__  # the extension and the engine are one release
    assert "wheels" not in data and "platforms" not in data  # written per platform into the zip only
    assert pk.validate_manifest(REPO)["id"] == "gid"  # a folder works too


def test_good_manifest_has_no_problems(tmp_path):
    assert pk.validate_manifest(write_manifest(tmp_path, GOOD))["tagline"].startswith("Animate")


BROKEN = {
    "tagline too long": (('tagline = "Animate still backdrops with oscillating motion"',
                          'tagline = "' + "x" * 65 + '"'), ["tagline", "64", "65"]),
    "tagline trailing period": (('oscillating motion"', 'oscillating motion."'), ["tagline", "punctuation"]),
    "empty value": (('maintainer = "gid developers"', 'maintainer = ""'), ["maintainer", "empty"]),
    "empty list": (('tags = ["Animation"]', "tags = []"), ["tags", "empty"]),
    "missing id": (('id = "gid"\n', ""), ["missing required key 'id'"]),
    "bad id": (('id = "gid"', 'id = "gid-addon"'), ["id", "identifier"]),
    "blender too old": (('"4.2.0"', '"4.1.0"'), ["blender_version_min", "4.1.0", "4.2.0"]),
    "blender version form": (('"4.2.0"', '"4.2"'), ["blender_version_min", "three numbers"]),
    "license format": (('"SPDX:GPL-3.0-or-later"', '"GPL-3.0-or-later"'), ["license", "SPDX:"]),
    "license not a list": (('license = ["SPDX:GPL-3.0-or-later"]', 'license = "SPDX:GPL-3.0-or-later"'),
                           ["license", "list"]),
    "permission too long": (('files = "Read images and videos"', 'files = "' + "Read " * 14 + 'files"'),
                            ["permissions.files", "64"]),
    "permission trailing period": (('files = "Read images and videos"', 'files = "Read images and videos."'),
                                   ["permissions.files", "punctuation"]),
    "unknown permission": (('files = "Read images and videos"', 'disk = "Read images"'), ["permissions", "disk"]),
    "wheel missing": (('tags = ["Animation"]', 'tags = ["Animation"]\nwheels = ["./wheels/onnxruntime-1.32.0-'
                       'cp311-cp311-win_amd64.whl"]'), ["wheels", "does not exist"]),
    "wheel path form": (('tags = ["Animation"]', 'tags = ["Animation"]\nwheels = ["wheels/x-1-py3-none-any.whl"]'),
                        ["wheels", "./wheels/"]),
    "bad platform": (('tags = ["Animation"]', 'tags = ["Animation"]\nplatforms = ["linux-arm"]'),
                     ["platforms", "linux-arm"]),
    "wrong type": (('type = "add-on"', 'type = "theme"'), ["type", "add-on"]),
    "schema version": (('schema_version = "1.0.0"', 'schema_version = "1.1.0"'), ["schema_version"]),
    "version not semver": (('version = "0.1.0"', 'version = "0.1"'), ["version", "semantic"]),
    "unknown tag": (('tags = ["Animation"]', 'tags = ["Motion"]'), ["tags", "Motion"]),
    "typo key": (('tagline =', 'tag_line = "x"\ntagline ='), ["unknown key 'tag_line'"]),
    "invalid toml": (('id = "gid"', 'id = gid'), ["invalid TOML"]),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_manifest_names_the_problem(tmp_path, case):
    (old, new), expected = BROKEN[case]
    assert old in GOOD
    path = write_manifest(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(InputError) as info:
        pk.validate_manifest(path)
    message = str(info.value)
    assert "\n" not in message
    for part in expected:
        assert part in message, f"{case}: {part!r} not in {message!r}"


def test_several_problems_in_one_line(tmp_path):
    path = write_manifest(tmp_path, GOOD.replace('"4.2.0"', '"4.1.0"').replace('oscillating motion"',
                                                                               'oscillating motion!"'))
    with pytest.raises(InputError, match=r"tagline: .*; blender_version_min:|blender_version_min: .*; tagline:"):
        pk.validate_manifest(path)


def test_existing_wheel_path_validates(tmp_path):
    (tmp_path / "wheels").mkdir()
    fake_wheel(tmp_path / "wheels", "packaging-26.4-py3-none-any.whl")
    text = GOOD.replace('tags = ["Animation"]',
                        'tags = ["Animation"]\nplatforms = ["linux-x64"]\n'
                        'wheels = ["./wheels/packaging-26.4-py3-none-any.whl"]')
    data = pk.validate_manifest(write_manifest(tmp_path, text))
    assert data["wheels"] == ["./wheels/packaging-26.4-py3-none-any.whl"]


def test_cli_prints_one_line_and_exits_2_on_a_bad_manifest(tmp_path, capsys):
    src = tmp_path / "src"
    write_manifest(src, GOOD.replace('oscillating motion"', 'oscillating motion."'))
    (src / "__init__.py").write_text("")
    rc = main(["build-extension", "--source", str(src), "--no-wheels", "-o", str(tmp_path / "dist")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("gid: error: blender_manifest.toml: tagline: must not end with punctuation")
    assert err.count("\n") == 1
    assert not (tmp_path / "dist").exists() or not any((tmp_path / "dist").iterdir())


def test_manifest_for_zip_rewrites_platforms_and_wheels():
    text = GOOD.replace('tags = ["Animation"]', 'tags = ["Animation"]\nplatforms = ["windows-x64",\n  "linux-x64"]'
                        '\nwheels = ["./wheels/old-1-py3-none-any.whl"]  # old')
    out = pk.manifest_for_zip(text, ["linux-x64"], ["./wheels/a-1-py3-none-any.whl", "./wheels/b-2-py3-none-any.whl"])
    data = tomllib.loads(out)
    assert data["platforms"] == ["linux-x64"]
    assert data["wheels"] == ["./wheels/a-1-py3-none-any.whl", "./wheels/b-2-py3-none-any.whl"]
    assert data["permissions"] == {"files": "Read images and videos"}  # tables untouched
    assert "old-1" not in out
    bare = tomllib.loads(pk.manifest_for_zip(text))
    assert "platforms" not in bare and "wheels" not in bare


# --------------------------------------------------------------------------------- patterns, wheel names
@pytest.mark.parametrize("pattern, path, is_dir, expected", [
    ("__pycache__/", "gid_engine/__pycache__", True, True),
    ("__pycache__/", "__pycache__", False, False),  # folders only
    ("/tests/", "tests", True, True),
    ("/tests/", "addon/tests", True, False),  # anchored at the root
    ("*.egg-info/", "gid.egg-info", True, True),
    (".*", "addon/.DS_Store", False, True),
    ("*.pyc", "a/b/c.pyc", False, True),
    ("/*.zip", "gid-0.1.0.zip", False, True),
    ("/*.zip", "addon/icons.zip", False, False),
    ("gid_engine/**/*.onnx", "gid_engine/assets/x.onnx", False, True),
    ("gid_engine/*.onnx", "gid_engine/assets/x.onnx", False, False),  # * stays within one folder
])
def test_path_patterns(pattern, path, is_dir, expected):
    assert pk.PathPatterns([pattern]).match(path, is_dir) is expected


def test_path_pattern_negation_reincludes():
    m = pk.PathPatterns(["*.onnx", "!softmax_splat.onnx"])
    assert m.match("gid_engine/assets/other.onnx", False)
    assert not m.match("gid_engine/assets/softmax_splat.onnx", False)


@pytest.mark.parametrize("filename, platform, ok", [
    ("onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl", "linux-x64", True),
    ("onnxruntime-1.32.0-cp313-cp313-manylinux_2_28_x86_64.whl", "linux-x64", False),  # asked for 3.11
    ("onnxruntime-1.32.0-cp311-cp311-manylinux_2_34_x86_64.whl", "linux-x64", False),  # newer than Blender's glibc
    ("onnxruntime-1.32.0-cp312-cp312-manylinux_2_28_x86_64.whl", "linux-x64", False),
    ("onnxruntime-1.32.0-cp311-cp311-win_amd64.whl", "linux-x64", False),
    ("onnxruntime-1.31.0-cp311-cp311-win_amd64.whl", "windows-x64", False),  # other version
    ("onnxruntime-1.32.0-cp311-cp311-macosx_14_0_arm64.whl", "macos-arm64", True),
    ("onnxruntime-1.32.0-cp311-cp311-macosx_15_0_arm64.whl", "macos-arm64", False),
])
def test_wheel_fits_onnxruntime(filename, platform, ok):
    assert pk.wheel_fits(filename, pk.BUNDLED[0], platform) is ok


@pytest.mark.parametrize("filename, python, ok", [
    ("onnxruntime-1.32.0-cp313-cp313-manylinux_2_28_x86_64.whl", "3.13", True),
    ("onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl", "3.13", False),
    ("onnxruntime-1.32.0-cp314-cp314-manylinux_2_28_x86_64.whl", "3.13", False),
    ("onnxruntime-1.32.0-cp37-abi3-manylinux_2_28_x86_64.whl", "3.13", True),  # stable ABI: any later Python
    ("onnxruntime-1.32.0-cp313-abi3-manylinux_2_28_x86_64.whl", "3.11", False),  # stable ABI from 3.13 on
    ("onnxruntime-1.32.0-py3-none-any.whl", "3.13", True),
])
def test_wheel_fits_each_blender_python(filename, python, ok):
    assert pk.wheel_fits(filename, pk.BUNDLED[0], "linux-x64", python) is ok


def test_every_blender_python_gets_a_wheel_set():
    """Blender 4.2 - 5.0 run Python 3.11, 5.1+ Python 3.13: a zip carries a set for each."""
    assert pk.PYTHON_VERSIONS == ("3.11", "3.13")


def test_wheel_fits_abi3_universal_and_pure():
    protobuf = next(r for r in pk.BUNDLED if r.name == "protobuf")
    assert pk.wheel_fits(f"protobuf-{protobuf.version}-cp39-abi3-macosx_10_9_universal2.whl", protobuf, "macos-arm64")
    assert pk.wheel_fits(f"protobuf-{protobuf.version}-cp39-abi3-manylinux2014_x86_64.whl", protobuf, "linux-x64")
    assert not pk.wheel_fits(f"protobuf-{protobuf.version}-cp313-abi3-win_amd64.whl", protobuf, "windows-x64")
    opencv = next(r for r in pk.BUNDLED if r.name == "opencv-python-headless")
    assert pk.wheel_fits("opencv_python_headless-4.11.0.86-cp37-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                         opencv, "linux-x64")
    flat = next(r for r in pk.BUNDLED if r.name == "flatbuffers")
    assert pk.wheel_fits(f"flatbuffers-{flat.version}-py2.py3-none-any.whl", flat, "windows-x64")


def test_bundled_set_respects_blender():
    names = {r.name: r.version for r in pk.BUNDLED}
    assert "numpy" not in names  # Blender ships numpy 1.26
    assert tuple(int(x) for x in names["opencv-python-headless"].split(".")[:2]) < (4, 12)  # 4.12 needs numpy 2
    assert tuple(int(x) for x in names["protobuf"].split(".")[:3]) >= (4, 25, 8)  # onnxruntime's floor
    assert set(names) >= {"onnxruntime", "flatbuffers", "packaging", "protobuf"}
    assert "macos-x64" not in pk.SUPPORTED_PLATFORMS
    gpu = pk.requirements_for("linux-x64", gpu=True)
    assert gpu[0].name == "onnxruntime-gpu" and "onnxruntime" not in {r.name for r in gpu}
    assert pk.requirements_for("macos-arm64", gpu=True)[0].name == "onnxruntime"  # no CUDA on macOS


# --------------------------------------------------------------------------------- --no-wheels zip
def test_nowheels_zip_contents(nowheels_zip, tmp_path):
    assert nowheels_zip.name == f"gid-{__version__}.zip"
    with zipfile.ZipFile(nowheels_zip) as z:
        names = set(z.namelist())
        assert z.testzip() is None
        for needed in ("blender_manifest.toml", "__init__.py", "addon/__init__.py",
                       "gid_engine/__init__.py", "gid_engine/assets/softmax_splat.onnx",
                       "exporters/atomic.py", "README.md", "LICENSE"):
            assert needed in names, needed
        assert (z.read("gid_engine/assets/softmax_splat.onnx")
                == (REPO / "gid_engine/assets/softmax_splat.onnx").read_bytes())
        assert z.read("__init__.py") == (REPO / "__init__.py").read_bytes()
        z.extractall(tmp_path / "x")
    for name in names:
        top = name.split("/")[0]
        assert top not in {"tests", "samples", ".venv", ".git", ".ci", "out", "dist", "requirements", "wheels"}, name
        assert "__pycache__" not in name and not name.endswith(".pyc"), name
        assert ".egg-info" not in name and not any(part.startswith(".") for part in name.split("/")), name
    assert not {"Makefile", "pyproject.toml"} & names
    assert not any(n.startswith("wheels/") for n in names)
    data = pk.validate_manifest(tmp_path / "x")
    assert "platforms" not in data and "wheels" not in data
    assert data == tomllib.loads((REPO / pk.MANIFEST).read_text(encoding="utf-8"))


def test_cli_nowheels_prints_path_and_size(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(subprocess, "run", no_pip)
    rc = main(["build-extension", "--no-wheels", "-o", str(tmp_path)])
    out = capsys.readouterr().out
    target = tmp_path / f"gid-{__version__}.zip"
    assert rc == 0 and target.is_file()
    assert out.strip() == f"{target}\t{target.stat().st_size} bytes ({pk.human_size(target.stat().st_size)}, no wheels)"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temp files left


@needs_bpy
def test_same_files_as_blenders_own_build(nowheels_zip, tmp_path):
    """Blender's own builder (bl_pkg's blender_ext.py, bpy-free), reading only the manifest's [build]
    patterns, packs exactly the files we pack: the manifest's patterns and our defaults agree."""
    import importlib.util

    bpy_dir = Path(importlib.util.find_spec("bpy").origin).parent
    script = next(bpy_dir.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    target = tmp_path / "blender.zip"
    proc = subprocess.run([sys.executable, str(script), "build", "--source-dir", str(REPO),
                           "--output-filepath", str(target), "--valid-tags", ""],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with zipfile.ZipFile(target) as a, zipfile.ZipFile(nowheels_zip) as b:
        ours, theirs = set(b.namelist()), set(a.namelist())
    assert ours == theirs, (sorted(ours - theirs), sorted(theirs - ours))


def test_excluded_package_file_is_refused(tmp_path):
    src = tmp_path / "src"
    write_manifest(src, GOOD + '\n[build]\npaths_exclude_pattern = ["/addon/"]\n')
    (src / "__init__.py").write_text("")
    (src / "addon").mkdir()
    (src / "addon/__init__.py").write_text("")
    with pytest.raises(InputError, match="addon/__init__.py is excluded"):
        pk.build_extension(tmp_path / "dist", source=src, wheels=False)


def test_manifest_with_wheels_is_refused_as_source(tmp_path):
    src = tmp_path / "src"
    (src / "wheels").mkdir(parents=True)
    fake_wheel(src / "wheels", "packaging-26.4-py3-none-any.whl")
    write_manifest(src, GOOD.replace('tags = ["Animation"]',
                                     'tags = ["Animation"]\nwheels = ["./wheels/packaging-26.4-py3-none-any.whl"]'))
    (src / "__init__.py").write_text("")
    with pytest.raises(InputError, match="leave out 'wheels' and 'platforms'"):
        pk.build_extension(tmp_path / "dist", source=src, wheels=False)


def test_failed_write_leaves_old_zip_and_no_temp(tmp_path, monkeypatch):
    out = tmp_path / "dist"
    (old,) = pk.build_extension(out, wheels=False)
    before = old.path.read_bytes()
    calls = {"n": 0}
    real_add = pk._add

    def failing_add(z, rel, data):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError(28, "No space left on device")
        real_add(z, rel, data)

    monkeypatch.setattr(pk, "_add", failing_add)
    with pytest.raises(OSError):
        pk.build_extension(out, wheels=False)
    assert old.path.read_bytes() == before
    assert [p.name for p in out.iterdir()] == [old.path.name]


# --------------------------------------------------------------------------------- wheels
def test_wheel_zips_list_exactly_their_wheels(wheel_zips, fake_cache, tmp_path):
    for platform, zip_path in wheel_zips.items():
        assert zip_path.is_file(), zip_path
        data = zip_manifest(zip_path)
        expected = [f"./wheels/{name}" for name in FAKE_WHEELS[platform]]
        assert data["platforms"] == [platform]
        assert data["wheels"] == expected
        with zipfile.ZipFile(zip_path) as z:
            names = z.namelist()
            assert sorted(n for n in names if n.startswith("wheels/")) == sorted(w[2:] for w in expected)
            for name in FAKE_WHEELS[platform]:
                assert z.read(f"wheels/{name}") == (fake_cache / name).read_bytes()
                assert z.getinfo(f"wheels/{name}").compress_type == zipfile.ZIP_STORED
            assert "gid_engine/assets/softmax_splat.onnx" in names and "__init__.py" in names
            z.extractall(tmp_path / platform)
        # The zip's manifest validates, wheel files included; all the rest equals the repo's manifest.
        extracted = pk.validate_manifest(tmp_path / platform)
        repo = tomllib.loads((REPO / pk.MANIFEST).read_text(encoding="utf-8"))
        assert {k: v for k, v in extracted.items() if k not in ("platforms", "wheels")} == repo


def test_offline_missing_wheel_names_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(subprocess, "run", no_pip)
    cache = tmp_path / "cache"
    cache.mkdir()
    for name in FAKE_WHEELS["linux-x64"][1:]:  # everything but Python 3.11's onnxruntime
        fake_wheel(cache, name)
    (cache / "onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(b"not a zip")
    rc = main(["build-extension", "-o", str(tmp_path / "dist"), "--platform", "linux-x64",
               "--wheels-cache", str(cache), "--offline"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.strip() == (f"gid: error: --offline: no cached wheel in {cache} for linux-x64: "
                           "onnxruntime==1.32.0 (Python 3.11)")
    assert not (tmp_path / "dist").exists()


@pytest.mark.parametrize("platform, why", [("macos-x64", "no macOS x86_64 wheels after 1.23.2"),
                                           ("windows-arm64", "opencv-python-headless has no Windows ARM64"),
                                           ("linux-arm", "not a Blender platform")])
def test_unsupported_platform_is_refused_with_the_reason(tmp_path, capsys, platform, why):
    rc = main(["build-extension", "--platform", platform, "--offline", "--wheels-cache", str(tmp_path),
               "-o", str(tmp_path / "dist")])
    err = capsys.readouterr().err
    assert rc == 2 and why in err and err.count("\n") == 1
    assert not (tmp_path / "dist").exists()


def test_pip_download_command(tmp_path, monkeypatch):
    """The pip calls: binary only, no deps, every platform tag, once per Blender Python for what is
    not shared between them (the pure wheels serve both); the wheels land in the cache."""
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        dest = Path(cmd[cmd.index("-d") + 1])
        name, version = cmd[-1].split("==")
        cp = "cp" + cmd[cmd.index("--python-version") + 1].replace(".", "")
        tag = {"onnxruntime": f"{cp}-{cp}-manylinux_2_28_x86_64"}.get(name, "py3-none-any")
        fake_wheel(dest, f"{name.replace('-', '_')}-{version}-{tag}.whl")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_run)
    cache = tmp_path / "cache"
    wheels = pk.resolve_wheels("linux-x64", cache)
    assert [w.name.split("-")[0] for w in wheels] == [pk._norm(r.name) for r in pk.BUNDLED] + ["onnxruntime"]
    assert [w.name.split("-")[2] for w in wheels if w.name.startswith("onnxruntime")] == ["cp311", "cp313"]
    assert len(calls) == len(pk.BUNDLED) + 1
    assert [c[c.index("--python-version") + 1] for c in calls] == ["3.11"] * len(pk.BUNDLED) + ["3.13"]
    cmd = calls[0]
    assert cmd[:4] == [sys.executable, "-m", "pip", "download"]
    for flag in ("--only-binary=:all:", "--no-deps"):
        assert flag in cmd
    assert cmd[cmd.index("--implementation") + 1] == "cp"
    tags = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--platform"]
    assert tags == list(pk.PIP_PLATFORM_TAGS["linux-x64"]) and "manylinux_2_28_x86_64" in tags
    assert cmd[-1] == "onnxruntime==1.32.0"
    assert not any("numpy" in c[-1] for c in calls)
    assert sorted(p.name for p in cache.iterdir()) == sorted(w.name for w in wheels)  # no temp folders left
    # Second time: all cached, pip is not run.
    monkeypatch.setattr(subprocess, "run", no_pip)
    assert pk.resolve_wheels("linux-x64", cache) == wheels


def test_pip_failure_is_one_line(tmp_path, monkeypatch):
    def failing_run(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 1, "", "Looking in links: /x\nERROR: No matching distribution found "
                                           "for onnxruntime==1.32.0\n")

    monkeypatch.setattr(subprocess, "run", failing_run)
    with pytest.raises(InputError, match=r"^could not download onnxruntime==1.32.0 for windows-x64, Python 3.11: "
                                         r"ERROR: No matching"):
        pk.resolve_wheels("windows-x64", tmp_path)


# --------------------------------------------------------------------------------- the real Blender
def run_bpy(script: str, tmp: Path, *args: str) -> tuple[dict, str]:
    """Run ``script`` with the real bpy in a fresh process whose Blender user folders are under ``tmp``."""
    home = tmp / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, HOME=str(home), BLENDER_USER_RESOURCES=str(tmp / "blender"),
               XDG_CONFIG_HOME=str(home / ".config"), PYTHONDONTWRITEBYTECODE="1")
    path = tmp / "script.py"
    path.write_text(textwrap.dedent(script), encoding="utf-8")
    proc = subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True, env=env,
                          cwd=tmp, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    result = json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1][7:])
    return result, output


INSTALL = """
    import importlib, json, os, sys
    import bpy
    import addon_utils  # on sys.path once bpy is imported

    zip_path, = sys.argv[1:]
    mod = "bl_ext.user_default.gid"
    r = {"op": sorted(bpy.ops.extensions.package_install_files(
        filepath=zip_path, repo="user_default", enable_on_install=True))}
    r["enabled"] = list(addon_utils.check(mod))
    r["in_prefs"] = mod in bpy.context.preferences.addons
    pkg = importlib.import_module(mod)
    r["file"] = pkg.__file__
    runtime = importlib.import_module(mod + ".gid_engine.runtime")
    r["asset"] = str(runtime.asset_path(runtime.SPLAT_ONNX))
    r["asset_exists"] = runtime.asset_path(runtime.SPLAT_ONNX).is_file()
    r["atomic"] = importlib.import_module(mod + ".exporters.atomic").__name__
    site = os.path.join(bpy.utils.user_resource("EXTENSIONS", path=".local"), "lib",
                        "python%d.%d" % sys.version_info[:2], "site-packages")
    r["site_packages"] = sorted(os.listdir(site)) if os.path.isdir(site) else []
    addon_utils.disable(mod, default_set=True)
    r["after_disable"] = list(addon_utils.check(mod))
    r["in_prefs_after"] = mod in bpy.context.preferences.addons
    print("RESULT " + json.dumps(r))
"""


def _check_install(result: dict, output: str, tmp: Path) -> None:
    assert "Traceback" not in output, output
    assert result["op"] == ["FINISHED"], output
    assert result["enabled"] == [True, True] and result["in_prefs"], output
    assert Path(result["file"]).is_relative_to(tmp / "blender" / "extensions" / "user_default" / "gid")
    assert Path(result["asset"]).is_relative_to(tmp / "blender") and result["asset_exists"]
    assert result["atomic"] == "bl_ext.user_default.gid.exporters.atomic"
    assert result["after_disable"] == [False, False] and not result["in_prefs_after"], output


@needs_bpy
def test_install_enable_disable_in_blender(nowheels_zip, tmp_path):
    result, output = run_bpy(INSTALL, tmp_path, str(nowheels_zip))
    _check_install(result, output, tmp_path)
    assert result["site_packages"] == []  # no wheels, nothing installed beside the add-on


@needs_bpy
@pytest.mark.skipif(not sys.platform.startswith("linux") or os.uname().machine != "x86_64",
                    reason="installs the linux-x64 zip")
def test_install_with_wheels_in_blender(wheel_zips, tmp_path):
    """Blender accepts the generated platforms/wheels manifest and unpacks the (fake) wheels."""
    result, output = run_bpy(INSTALL, tmp_path, str(wheel_zips["linux-x64"]))
    _check_install(result, output, tmp_path)
    expected = {n.split("-")[0] + "-" + n.split("-")[1] + ".dist-info" for n in FAKE_WHEELS["linux-x64"]}
    assert expected <= set(result["site_packages"]), result["site_packages"]


VALIDATE = """
    import contextlib, io, json, sys
    import bpy  # noqa: F401 - puts Blender's core add-ons (bl_pkg) on sys.path
    from bl_pkg import bl_extension_cli  # what `blender --command extension ...` runs

    r = {}
    for path in sys.argv[1:]:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            rc = bl_extension_cli.cli_extension_handler(["validate", path])
        r[path] = [rc, buf.getvalue()]
    print("RESULT " + json.dumps(r))
"""


@needs_bpy
def test_blender_validates_the_zips(nowheels_zip, wheel_zips, tmp_path):
    bad = tmp_path / "bad"
    write_manifest(bad, GOOD.replace('oscillating motion"', 'oscillating motion."'))
    (bad / "__init__.py").write_text("")
    paths = [str(nowheels_zip), *map(str, wheel_zips.values()), str(REPO), str(bad)]
    result, output = run_bpy(VALIDATE, tmp_path, *paths)
    for path in paths[:-1]:
        rc, text = result[path]
        assert rc == 0 and "Success" in text, (path, text)
    rc, text = result[str(bad)]  # the validator is real: it refuses what ours refuses
    assert rc != 0 and "tagline" in text, text
