"""Build the Blender extension zips (``gid build-extension``).

The repository root is the extension. A build copies the extension files (root ``__init__.py``,
``addon/``, ``gid_engine/`` with its ONNX assets, ``exporters/``, ``README.md``, ``LICENSE``) into
one zip per platform, together with the wheels Blender lacks, and rewrites the zip's
``blender_manifest.toml`` with that platform and its ``./wheels/...`` list (the manifest in the
repository never lists wheels). This is what Blender's own ``--split-platforms`` build does.

Blender 4.2 - 5.0 run Python 3.11 with numpy 1.26, Blender 5.1+ Python 3.13 with numpy 2 (never
bundle numpy). One zip serves them all: it carries one wheel set per Python ABI
(``PYTHON_VERSIONS``), and Blender installs only the wheels whose tags fit its own Python and
platform (its extension manager filters them; measured on 4.2 LTS through 5.3 by
``tools/blender_matrix.py``). What Blender lacks:

* ``onnxruntime`` 1.32.0, cp311 and cp313 builds, and its declared dependencies ``flatbuffers``,
  ``packaging``, ``protobuf`` (none is imported by ``import onnxruntime`` / ``InferenceSession``;
  bundled so the metadata is complete; protobuf stays on the 6.x line so it does not force a 7.x
  upgrade on other extensions, which share one site-packages in Blender where the highest version
  wins). These three are pure or stable-ABI wheels: one file serves both Pythons.
* ``opencv-python-headless`` 4.11.0.86, a stable-ABI (abi3) wheel built against numpy 2 that also
  runs on numpy 1.26: the one OpenCV build that works with every Blender's numpy (4.12+ requires
  numpy 2, which Blender 4.2 - 5.0 do not have).

Platforms: linux-x64, windows-x64, macos-arm64. Left out: macos-x64 (onnxruntime has no macOS
x86_64 wheels after 1.23.2), windows-arm64 (opencv-python-headless has no Windows ARM64 wheels).
The macOS onnxruntime 1.32 wheel is tagged macosx_14_0: the macos-arm64 zip needs macOS 14+
(Blender itself runs on 11.2+). ``gpu=True`` swaps ``onnxruntime`` for ``onnxruntime-gpu`` 1.31.1
(the newest on PyPI) on linux-x64 / windows-x64: CUDA provider, ~256 MB, and it cannot share a
site-packages with ``onnxruntime``; CUDA 13 / cuDNN 9 must come from the system, else it runs on CPU.

Wheels are downloaded with ``pip download`` into a persistent cache (default
``~/.cache/gid/wheels``): a second build is offline. This module does not import bpy or torch.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

from ..gid_engine.errors import InputError

MANIFEST = "blender_manifest.toml"
SOURCE_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = Path("~/.cache/gid/wheels")

# Blender's platform names (manifest ``platforms``).
BLENDER_PLATFORMS = ("windows-x64", "windows-arm64", "macos-arm64", "macos-x64", "linux-x64")
# The platforms gid can be built for: those with onnxruntime 1.32 and opencv 4.11 wheels.
SUPPORTED_PLATFORMS = ("linux-x64", "windows-x64", "macos-arm64")
GPU_PLATFORMS = ("linux-x64", "windows-x64")

# pip matches platform tags exactly (it expands only macOS versions and manylinux2014), so
# several tags are passed. Blender 4.2+ needs glibc 2.28 and macOS 11.2.
PIP_PLATFORM_TAGS: dict[str, tuple[str, ...]] = {
    "linux-x64": ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
                  "manylinux2014_x86_64"),
    "windows-x64": ("win_amd64",),
    "macos-arm64": ("macosx_14_0_arm64", "macosx_13_0_arm64", "macosx_12_0_arm64", "macosx_11_0_arm64"),
}
# Blender's own Pythons: 3.11 in 4.2 LTS - 5.0, 3.13 in 5.1 - 5.3. Every zip carries one wheel set
# per ABI so one file installs on all of them: Blender installs only the wheels that fit its Python.
PYTHON_VERSIONS: tuple[str, ...] = ("3.11", "3.13")


def host_platform() -> str:
    """This machine's Blender platform name (``linux-x64``...); InputError where gid builds none."""
    import platform

    machine = platform.machine().lower()
    arch = {"x86_64": "x64", "amd64": "x64", "arm64": "arm64", "aarch64": "arm64"}.get(machine, machine)
    system = {"linux": "linux", "win32": "windows", "darwin": "macos"}.get(sys.platform, sys.platform)
    name = f"{system}-{arch}"
    if name not in SUPPORTED_PLATFORMS:
        raise InputError(f"no extension build for this machine ({name}); "
                         f"gid builds {', '.join(SUPPORTED_PLATFORMS)}")
    return name


@dataclass(frozen=True)
class Requirement:
    name: str
    version: str
    why: str


BUNDLED: tuple[Requirement, ...] = (
    Requirement("onnxruntime", "1.32.0", "the renderer (shipped ONNX graph)"),
    Requirement("flatbuffers", "25.12.19", "onnxruntime dependency"),
    Requirement("packaging", "26.4", "onnxruntime dependency (not shipped by Blender)"),
    Requirement("protobuf", "6.33.6", "onnxruntime dependency (needs >=4.25.8)"),
    Requirement("opencv-python-headless", "4.11.0.86", "motion extraction, image I/O (<4.12: numpy 1.26)"),
)
GPU_ONNXRUNTIME = Requirement("onnxruntime-gpu", "1.31.1", "CUDA renderer (newest onnxruntime-gpu on PyPI)")
NEVER_BUNDLED = ("numpy",)  # Blender ships numpy 1.26

# Always left out of the zip (gitignore-style, like [build] paths_exclude_pattern), on top of
# the manifest's own patterns.
DEFAULT_EXCLUDES: tuple[str, ...] = (
    "__pycache__/", "*.pyc", "*.pyo", ".*",  # hidden: .git .venv .ci .pytest_cache .gitignore
    "/tests/", "/samples/", "/data/", "/checkpoints/", "/out/", "/dist/", "/build/", "/wheels/", "/requirements/",
    "/tools/", "/gid_tools/", "/docs/",
    "*.egg-info/", "/*.zip", "/Makefile", "/pyproject.toml", "/setup.py", "/setup.cfg",
)

# Blender's add-on tags (_bpy_internal/extensions/tags.py, Blender 4.2 - 5.0).
ADDON_TAGS = frozenset({
    "3D View", "Add Curve", "Add Mesh", "Animation", "Bake", "Camera", "Compositing", "Development",
    "Game Engine", "Geometry Nodes", "Grease Pencil", "Import-Export", "Lighting", "Material", "Mesh",
    "Modeling", "Node", "Object", "Paint", "Physics", "Pipeline", "Render", "Rigging", "Scene",
    "Sculpt", "Sequencer", "System", "Text Editor", "Tracking", "User Interface", "UV",
})
PERMISSION_KEYS = ("files", "network", "clipboard", "camera", "microphone")
TERSE_MAX = 64

REQUIRED_KEYS: tuple[tuple[str, type], ...] = (
    ("schema_version", str), ("id", str), ("version", str), ("name", str), ("tagline", str),
    ("maintainer", str), ("type", str), ("blender_version_min", str), ("license", list),
)
OPTIONAL_KEYS: tuple[tuple[str, type], ...] = (
    ("blender_version_max", str), ("website", str), ("copyright", list), ("permissions", dict),
    ("tags", list), ("platforms", list), ("wheels", list), ("build", dict),
)

_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
_BLENDER_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
_SPDX = re.compile(r"^SPDX:[A-Za-z0-9][A-Za-z0-9.+-]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# --------------------------------------------------------------------------------- manifest
def _terse_problem(value: str) -> Optional[str]:
    """Blender's rule for tagline and permission reasons: short, no trailing punctuation."""
    if len(value) > TERSE_MAX:
        return f"must be at most {TERSE_MAX} characters, has {len(value)}"
    if value != value.strip() or _CONTROL.search(value):
        return "must not have surrounding spaces or control characters"
    if not (value[-1].isalnum() or value[-1] in ")]}"):
        return f"must not end with punctuation ({value[-1]!r})"
    return None


def _empty_values(value: Any, where: str) -> list[str]:
    if isinstance(value, str) and not value.strip() or isinstance(value, (list, dict)) and not value:
        return [f"{where}: empty value (leave the key out instead)"]
    out: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _empty_values(v, f"{where}.{k}" if where else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _empty_values(v, f"{where}[{i}]")
    return out


def _blender_version(text: str) -> Optional[tuple[int, int, int]]:
    m = _BLENDER_VERSION.match(text)
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


def _list_of_str(data: dict, key: str) -> list[str]:
    value = data.get(key) or []
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def manifest_problems(data: dict[str, Any], root: Optional[Path] = None) -> list[str]:
    """Every problem of a parsed manifest, one short line each; ``root`` resolves wheel paths."""
    problems = _empty_values(data, "")
    for key, kind in REQUIRED_KEYS:
        if key not in data:
            problems.append(f"missing required key {key!r}")
        elif not isinstance(data[key], kind):
            problems.append(f"{key}: must be a {kind.__name__}, not {type(data[key]).__name__}")
    known = {k for k, _ in REQUIRED_KEYS + OPTIONAL_KEYS}
    for key, kind in OPTIONAL_KEYS:
        if key in data and not isinstance(data[key], kind):
            problems.append(f"{key}: must be a {'table' if kind is dict else kind.__name__}, "
                            f"not {type(data[key]).__name__}")
    for key in data:
        if key not in known:
            problems.append(f"unknown key {key!r}")

    def text(key: str) -> Optional[str]:
        v = data.get(key)
        return v if isinstance(v, str) and v.strip() else None

    if (v := text("schema_version")) is not None and v != "1.0.0":
        problems.append(f"schema_version: must be \"1.0.0\", not {v!r}")
    if (v := text("id")) is not None:
        if not v.isidentifier() or "__" in v or v.startswith("_") or v.endswith("_"):
            problems.append(f"id: {v!r} is not a valid identifier (letters, digits, single '_')")
    if (v := text("version")) is not None and not _SEMVER.match(v):
        problems.append(f"version: {v!r} is not a semantic version like 1.2.3")
    for key in ("name", "maintainer"):
        if (v := text(key)) is not None and (v != v.strip() or _CONTROL.search(v)):
            problems.append(f"{key}: must not have surrounding spaces or control characters")
    if (v := text("tagline")) is not None and (p := _terse_problem(v)):
        problems.append(f"tagline: {p}")
    if (v := text("type")) is not None and v != "add-on":
        problems.append(f"type: must be \"add-on\", not {v!r}")
    vmin = None
    if (v := text("blender_version_min")) is not None:
        vmin = _blender_version(v)
        if vmin is None:
            problems.append(f"blender_version_min: {v!r} must be three numbers like 4.2.0")
        elif vmin < (4, 2, 0):
            problems.append(f"blender_version_min: {v!r} is older than 4.2.0, the first with extensions")
    if (v := text("blender_version_max")) is not None:
        vmax = _blender_version(v)
        if vmax is None:
            problems.append(f"blender_version_max: {v!r} must be three numbers like 5.1.0")
        elif vmin is not None and vmax <= vmin:
            problems.append(f"blender_version_max: {v!r} must be newer than blender_version_min")
    if isinstance(data.get("license"), list):
        for lic in data["license"]:
            if not isinstance(lic, str) or not _SPDX.match(lic):
                problems.append(f"license: {lic!r} must look like \"SPDX:GPL-3.0-or-later\"")
    if (v := text("website")) is not None and not re.match(r"^https?://\S+$", v):
        problems.append(f"website: {v!r} must be an http(s) URL")
    if isinstance(data.get("copyright"), list):
        for c in data["copyright"]:
            if not isinstance(c, str) or not re.match(r"^\d{4}(-\d{4})? \S", c):
                problems.append(f"copyright: {c!r} must look like \"2024 Name\" or \"2023-2024 Name\"")
    if isinstance(data.get("tags"), list):
        for t in data["tags"]:
            if t not in ADDON_TAGS:
                problems.append(f"tags: {t!r} is not one of Blender's add-on tags")
    if isinstance(data.get("platforms"), list):
        plats = data["platforms"]
        for p in plats:
            if p not in BLENDER_PLATFORMS:
                problems.append(f"platforms: {p!r} is not one of {', '.join(BLENDER_PLATFORMS)}")
        if len(set(map(str, plats))) != len(plats):
            problems.append("platforms: duplicate entries")
    if isinstance(data.get("wheels"), list):
        for w in data["wheels"]:
            if not isinstance(w, str) or not re.match(r"^\./wheels/[^/\\\"]+\.whl$", w):
                problems.append(f"wheels: {w!r} must be a \"./wheels/NAME.whl\" path")
                continue
            if WheelName.parse(w[len("./wheels/"):]) is None:
                problems.append(f"wheels: {w!r} is not a wheel file name (name-version-py-abi-platform.whl)")
            if root is not None and not (root / w).is_file():
                problems.append(f"wheels: {w} does not exist")
    if isinstance(data.get("permissions"), dict):
        for key, reason in data["permissions"].items():
            if key not in PERMISSION_KEYS:
                problems.append(f"permissions: unknown permission {key!r} (use {', '.join(PERMISSION_KEYS)})")
            elif not isinstance(reason, str):
                problems.append(f"permissions.{key}: the reason must be a string")
            elif reason.strip() and (p := _terse_problem(reason)):
                problems.append(f"permissions.{key}: reason {p}")
    if isinstance(data.get("build"), dict):
        build = data["build"]
        for key, value in build.items():
            if key not in ("paths", "paths_exclude_pattern"):
                problems.append(f"build: unknown key {key!r}")
            elif not isinstance(value, list) or not all(isinstance(x, str) for x in value):
                problems.append(f"build.{key}: must be a list of strings")
        if "paths" in build and "paths_exclude_pattern" in build:
            problems.append("build: declare either paths or paths_exclude_pattern, not both")
    return problems


def validate_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse and check a ``blender_manifest.toml`` (or a folder holding one); InputError if invalid."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: invalid TOML: {exc}") from None
    problems = manifest_problems(data, root=path.parent)
    if problems:
        raise InputError(f"{path.name}: " + "; ".join(problems))
    return data


def manifest_for_zip(text: str, platforms: Sequence[str] = (), wheels: Sequence[str] = ()) -> str:
    """The manifest text with top-level ``platforms`` / ``wheels`` replaced by the given ones.

    Comments and the rest of the file are kept; the new keys go before the first table.
    """
    text = re.sub(r"(?ms)^(platforms|wheels)\s*=\s*\[.*?\][ \t]*(#[^\n]*)?\n?", "", text)
    lines = text.splitlines(keepends=True)
    at = next((i for i, ln in enumerate(lines) if re.match(r"^\s*\[", ln)), len(lines))

    def arr(items: Sequence[str]) -> str:
        if len(items) <= 1:
            return "[" + ", ".join(f'"{x}"' for x in items) + "]"
        return "[\n" + "".join(f'  "{x}",\n' for x in items) + "]"

    extra = "# Generated by `gid build-extension`.\n"
    if platforms:
        extra += f"platforms = {arr(list(platforms))}\n"
    if wheels:
        extra += f"wheels = {arr(list(wheels))}\n"
    if not (platforms or wheels):
        return "".join(lines)
    if at and lines[at - 1].strip():
        extra = "\n" + extra
    return "".join(lines[:at]) + extra + "\n" + "".join(lines[at:])


# --------------------------------------------------------------------------------- path patterns
def _glob_component(part: str) -> str:
    out, i = "", 0
    while i < len(part):
        c = part[i]
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[" and (j := part.find("]", i + 2)) != -1:
            body = part[i + 1:j]
            body = "^" + body[1:] if body.startswith("!") else body
            out += "[" + body.replace("\\", "\\\\") + "]"
            i = j
        else:
            out += re.escape(c)
        i += 1
    return out


class PathPatterns:
    """gitignore-style patterns as Blender's ``[build] paths_exclude_pattern`` reads them.

    ``/x`` anchors at the root, ``x/`` matches folders only, ``*`` stays within one folder, ``**``
    spans folders, ``!x`` re-includes; the last matching pattern decides.
    """

    def __init__(self, patterns: Iterable[str]) -> None:
        self._rules: list[tuple[bool, bool, re.Pattern[str]]] = []
        for pattern in patterns:
            negate = pattern.startswith("!")
            pattern = pattern[1:] if negate else pattern.removeprefix("\\")
            dir_only = pattern.endswith("/")
            anchored = pattern.startswith("/")
            parts = [p for p in pattern.strip("/").split("/") if p]
            if not parts:
                continue
            rx = ""
            for i, part in enumerate(parts):
                last = i == len(parts) - 1
                if part == "**":
                    rx += ".*" if last else "(?:[^/]+/)*"
                else:
                    rx += _glob_component(part) + ("" if last else "/")
            self._rules.append((negate, dir_only, re.compile(("^" if anchored else "^(?:.*/)?") + rx + "$")))

    def match(self, rel: str, is_dir: bool) -> bool:
        result = False
        for negate, dir_only, rx in self._rules:
            if dir_only and not is_dir:
                continue
            if rx.match(rel):
                result = not negate
        return result


def collect_files(source: Path, patterns: Sequence[str]) -> list[tuple[Path, str]]:
    """(absolute, zip-relative) for every file under ``source`` that no pattern excludes, sorted."""
    matcher = PathPatterns(patterns)
    out: list[tuple[Path, str]] = []
    for dirpath, dirnames, filenames in os.walk(source):
        base = Path(dirpath)
        rel_dir = base.relative_to(source).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = sorted(d for d in dirnames
                             if not (base / d).is_symlink() and not matcher.match(rel_dir + d, True))
        for name in sorted(filenames):
            rel = rel_dir + name
            if name == MANIFEST and not rel_dir:
                continue  # written separately (rewritten per platform)
            if not (base / name).is_file() or matcher.match(rel, False):
                continue
            out.append((base / name, rel))
    return sorted(out, key=lambda t: t[1])


# --------------------------------------------------------------------------------- wheels
def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


@dataclass(frozen=True)
class WheelName:
    name: str
    version: str
    python: tuple[str, ...]
    abi: tuple[str, ...]
    platform: tuple[str, ...]

    @classmethod
    def parse(cls, filename: str) -> Optional["WheelName"]:
        if not filename.endswith(".whl"):
            return None
        parts = filename[:-4].split("-")
        if len(parts) not in (5, 6):
            return None
        return cls(_norm(parts[0]), parts[1], *(tuple(p.split(".")) for p in parts[-3:]))


def _platform_tag_ok(tag: str, platform: str) -> bool:
    if tag == "any":
        return True
    if platform == "linux-x64":
        if tag in ("manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"):
            return True
        m = re.match(r"^manylinux_(\d+)_(\d+)_x86_64$", tag)
        return bool(m) and (int(m[1]), int(m[2])) <= (2, 28)
    if platform == "windows-x64":
        return tag == "win_amd64"
    if platform == "macos-arm64":
        m = re.match(r"^macosx_(\d+)_(\d+)_(arm64|universal2)$", tag)
        return bool(m) and (int(m[1]), int(m[2])) <= (14, 0)
    return False


def _cpython_tag(python: str) -> tuple[str, int]:
    major, minor = (int(x) for x in python.split("."))
    return f"cp{major}{minor}", minor


def wheel_fits(filename: str, req: Requirement, platform: str, python: str = PYTHON_VERSIONS[0]) -> bool:
    """Whether a wheel file name is ``req`` for CPython ``python`` (``"3.11"``) on the Blender ``platform``."""
    w = WheelName.parse(filename)
    if w is None or w.name != _norm(req.name) or w.version != req.version:
        return False
    cp, minor = _cpython_tag(python)
    py_ok = any(t in ("py3", cp) for t in w.python) or any(
        (m := re.match(r"^cp3(\d+)$", t)) and int(m[1]) <= minor and "abi3" in w.abi for t in w.python)
    abi_ok = any(a in ("none", "abi3", cp) for a in w.abi)
    return bool(py_ok and abi_ok and any(_platform_tag_ok(t, platform) for t in w.platform))


def _wheel_readable(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return any(".dist-info/" in n for n in z.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def find_cached_wheel(cache: Path, req: Requirement, platform: str,
                      python: str = PYTHON_VERSIONS[0]) -> Optional[Path]:
    """The cached wheel pip would pick for ``req`` on ``platform`` and CPython ``python``; None if none."""
    if not cache.is_dir():
        return None
    hits = [p for p in cache.iterdir() if p.is_file() and wheel_fits(p.name, req, platform, python)]
    # Prefer a platform wheel over a pure one, then the newest tag (what pip would pick).
    hits.sort(key=lambda p: ("any" not in WheelName.parse(p.name).platform, p.name), reverse=True)
    for path in hits:
        if _wheel_readable(path):
            return path
    return None


def requirements_for(platform: str, gpu: bool = False) -> list[Requirement]:
    reqs = list(BUNDLED)
    if gpu and platform in GPU_PLATFORMS:
        reqs[0] = GPU_ONNXRUNTIME
    return reqs


def pip_download(req: Requirement, platform: str, python: str, cache: Path, log: Callable[[str], None]) -> None:
    """``pip download`` one wheel for ``platform`` and CPython ``python`` into ``cache`` (via a temp
    folder: no partial files)."""
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=cache))
    try:
        cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-input",
               "--only-binary=:all:", "--no-deps", "--python-version", python,
               "--implementation", "cp"]
        for tag in PIP_PLATFORM_TAGS[platform]:
            cmd += ["--platform", tag]
        cmd += ["-d", str(tmp), f"{req.name}=={req.version}"]
        log(f"downloading {req.name} {req.version} for {platform}, Python {python}")
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines()
                     if ln.strip() and "is ignored: it is neither a file nor a directory" not in ln]
            why = next((ln for ln in reversed(lines) if ln.startswith("ERROR")), lines[-1] if lines else "")
            raise InputError(f"could not download {req.name}=={req.version} for {platform}, Python {python}: {why}")
        for path in tmp.iterdir():
            if path.suffix == ".whl":
                os.replace(path, cache / path.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def resolve_wheels(platform: str, cache: Path, *, pythons: Sequence[str] = PYTHON_VERSIONS, offline: bool = False,
                   gpu: bool = False, log: Callable[[str], None] = lambda s: None) -> list[Path]:
    """The cached wheel files for ``platform``, one set per CPython in ``pythons`` (a wheel that
    serves several, such as abi3 or pure Python, is listed once), downloading what is missing
    unless ``offline``."""
    found: list[Path] = []
    missing: list[str] = []
    for python in pythons:
        for req in requirements_for(platform, gpu):
            hit = find_cached_wheel(cache, req, platform, python)
            if hit is None and not offline:
                pip_download(req, platform, python, cache, log)
                hit = find_cached_wheel(cache, req, platform, python)
                if hit is None:
                    raise InputError(f"pip downloaded no usable {req.name}=={req.version} wheel "
                                     f"for {platform}, Python {python}")
            if hit is None:
                missing.append(f"{req.name}=={req.version} (Python {python})")
            elif hit not in found:
                found.append(hit)
    if missing:
        raise InputError(f"--offline: no cached wheel in {cache} for {platform}: {', '.join(missing)}")
    return found


# --------------------------------------------------------------------------------- zip
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)  # fixed: the same sources give the same zip
_STORED = (".whl", ".zip", ".onnx", ".png", ".jpg", ".jpeg", ".mp4")


def _add(z: zipfile.ZipFile, rel: str, data: bytes) -> None:
    info = zipfile.ZipInfo(rel, date_time=_ZIP_TIME)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_STORED if rel.lower().endswith(_STORED) else zipfile.ZIP_DEFLATED
    z.writestr(info, data, compresslevel=9 if info.compress_type == zipfile.ZIP_DEFLATED else None)


def write_zip(target: Path, manifest_text: str, files: Sequence[tuple[Path, str]],
              wheels: Sequence[Path] = ()) -> Path:
    """Write the extension zip atomically (hidden temp file in the same folder, then rename)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{secrets.token_hex(4)}")
    try:
        with zipfile.ZipFile(tmp, "x") as z:
            _add(z, MANIFEST, manifest_text.encode("utf-8"))
            for src, rel in files:
                _add(z, rel, src.read_bytes())
            for wheel in wheels:
                _add(z, f"wheels/{wheel.name}", wheel.read_bytes())
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    return target


@dataclass
class BuiltZip:
    path: Path
    platform: Optional[str]
    wheels: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def zip_name(ext_id: str, version: str, platform: Optional[str]) -> str:
    """Blender's ``--split-platforms`` names: ``gid-0.1.0-linux_x64.zip``; ``gid-0.1.0.zip`` without."""
    return f"{ext_id}-{version}" + (f"-{platform.replace('-', '_')}" if platform else "") + ".zip"


def _inside(path: Path, root: Path) -> Optional[str]:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None


def build_extension(output: str | os.PathLike[str] = "dist", *, source: str | os.PathLike[str] = SOURCE_ROOT,
                    platforms: Optional[Sequence[str]] = None, wheels: bool = True,
                    cache: str | os.PathLike[str] = DEFAULT_CACHE, offline: bool = False, gpu: bool = False,
                    log: Callable[[str], None] = lambda s: None) -> list[BuiltZip]:
    """Build the extension zip(s); see the module docstring. Returns what was written."""
    source = Path(source)
    output = Path(output).expanduser()
    cache = Path(cache).expanduser()
    manifest_path = source / MANIFEST
    data = validate_manifest(manifest_path)
    if data.get("wheels") or data.get("platforms"):
        raise InputError(f"{manifest_path}: leave out 'wheels' and 'platforms'; build-extension writes them")
    if not (source / "__init__.py").is_file():
        raise InputError(f"{source} has no __init__.py: not an add-on folder")
    text = manifest_path.read_text(encoding="utf-8")

    plats = list(platforms) if platforms else list(SUPPORTED_PLATFORMS)
    for p in plats:
        if p not in SUPPORTED_PLATFORMS:
            why = {"macos-x64": "onnxruntime has no macOS x86_64 wheels after 1.23.2",
                   "windows-arm64": "opencv-python-headless has no Windows ARM64 wheels"
                   }.get(p, "not a Blender platform")
            raise InputError(f"cannot build for {p!r}: {why} (choose from {', '.join(SUPPORTED_PLATFORMS)})")
    if len(set(plats)) != len(plats):
        raise InputError("--platform lists a platform twice")

    patterns = list(DEFAULT_EXCLUDES) + list(data.get("build", {}).get("paths_exclude_pattern", []))
    for extra in (output, cache):
        if (rel := _inside(extra, source)) not in (None, "."):
            patterns.append(f"/{rel}/")
    files = collect_files(source, patterns)
    names = {rel for _, rel in files}
    for needed in ("__init__.py", "addon/__init__.py", "gid_engine/__init__.py", "exporters/__init__.py"):
        if (source / needed).exists() and needed not in names:
            raise InputError(f"{needed} is excluded by a paths_exclude_pattern; the add-on needs it")

    built: list[BuiltZip] = []
    if not wheels:
        target = output / zip_name(data["id"], data["version"], None)
        write_zip(target, manifest_for_zip(text), files)
        return [BuiltZip(target, None)]

    resolved = {p: resolve_wheels(p, cache, offline=offline, gpu=gpu, log=log) for p in plats}
    for p in plats:
        rels = [f"./wheels/{w.name}" for w in resolved[p]]
        zip_text = manifest_for_zip(text, [p], rels)
        problems = manifest_problems(tomllib.loads(zip_text))
        if problems:  # a bug here, not the user's: say it plainly
            raise InputError(f"generated manifest for {p} is invalid: " + "; ".join(problems))
        target = output / zip_name(data["id"], data["version"], p)
        write_zip(target, zip_text, files, resolved[p])
        built.append(BuiltZip(target, p, [w.name for w in resolved[p]]))
    return built


def human_size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 1024:.1f} KiB"


# ----------------------------------------------------------------------------- gid build-extension
def add_commands(sub: Any) -> None:
    """``gid build-extension``: added to the CLI's subcommands (``cli.COMMAND_MODULES``)."""
    p = sub.add_parser("build-extension", help="build the Blender extension zip(s) with their wheels")
    p.add_argument("-o", "--output", default="dist", help="output folder (default dist/)")
    p.add_argument("--platform", nargs="+", default=None, metavar="PLATFORM",
                   help="one zip per platform: linux-x64 windows-x64 macos-arm64 (the default: all three; "
                        "no macos-x64, onnxruntime has no such wheel after 1.23.2)")
    p.add_argument("--no-wheels", action="store_true",
                   help="one zip without wheels or platforms (the Python env provides the packages)")
    p.add_argument("--wheels-cache", default=None, help="wheel cache folder (default ~/.cache/gid/wheels)")
    p.add_argument("--offline", action="store_true", help="use only cached wheels, never run pip")
    p.add_argument("--gpu", action="store_true",
                   help="bundle onnxruntime-gpu (CUDA) instead of onnxruntime on linux-x64/windows-x64")
    p.add_argument("--source", default=None, help="extension source folder (default: this checkout)")
    p.set_defaults(func=_command)


def _command(args: argparse.Namespace) -> None:
    from ..gid_engine.cli import print_result, say

    built = build_extension(args.output, source=args.source or SOURCE_ROOT, platforms=args.platform,
                            wheels=not args.no_wheels, cache=args.wheels_cache or DEFAULT_CACHE,
                            offline=args.offline, gpu=args.gpu, log=say)
    for z in built:
        extra = f", {len(z.wheels)} wheels" if z.platform else ", no wheels"
        print_result(f"{z.path}\t{z.size} bytes ({human_size(z.size)}{extra})")
