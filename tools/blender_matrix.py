"""The installed-extension legs of ``make test``: every Blender of the support matrix, as users install.

For each Blender release that PyPI provides as the ``bpy`` module (``LEGS``), this:

1. makes a venv with that release's Python (3.11 for 4.2 - 5.0, 3.13 for 5.1+), its ``bpy``, the
   numpy pinned in ``requirements/blender/<release>.txt`` and pytest: nothing of the extension's,
   no onnxruntime, no OpenCV, no torch, no ``gid`` from the source tree;
2. installs the extension zip built for this machine's platform into a fresh Blender user folder
   (isolated ``HOME``, no network): ``tests/installed/install.py``, Blender's *Install from Disk*;
3. runs the headless demo and the add-on suite (``tests/test_addon_*.py``, ``tests/test_torchfree_*.py``,
   ``tests/test_installed_extension.py``) with ``tests/installed`` on ``PYTHONPATH``, so every ``gid``
   import in the tests, and in the processes they start, is the installed extension.

A release whose Python is not on this machine is skipped with a line that says so; with
``--require-all`` or ``GID_REQUIRE_ALL_BLENDERS=1`` (``.ci/run``) that is a failure. The time of
each step is printed in a table and written as JSON (``--json``), the figures the README reports.

Usage: ``python tools/blender_matrix.py [--zip ZIP] [--only 4.2 5.3] [--require-all] [--json out.json]``
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[1]
REQUIREMENTS = REPO / "requirements" / "blender"
VENVS = REPO / ".venv-blender"
PACKAGE = "bl_ext.user_default.gid"
SUITE = ("tests/test_addon_*.py", "tests/test_torchfree_*.py", "tests/test_installed_extension.py")
LEG_TIMEOUT_S = 1800


@dataclass(frozen=True)
class Leg:
    """One Blender release: its name, its Python, the requirements file that pins its bpy."""

    release: str  # "4.2"
    name: str  # "Blender 4.2 LTS"
    python: str  # "3.11"

    @property
    def requirements(self) -> Path:
        return REQUIREMENTS / f"{self.release}.txt"


LEGS: tuple[Leg, ...] = (
    Leg("4.2", "Blender 4.2 LTS", "3.11"),
    Leg("4.5", "Blender 4.5 LTS", "3.11"),
    Leg("5.0", "Blender 5.0", "3.11"),
    Leg("5.1", "Blender 5.1", "3.13"),
    Leg("5.2", "Blender 5.2 LTS", "3.13"),
    Leg("5.3", "Blender 5.3", "3.13"),
)


@dataclass
class LegResult:
    release: str
    name: str
    python: str
    status: str = "not run"  # passed | failed | skipped
    why: str = ""
    bpy: str = ""
    numpy: str = ""
    seconds: dict[str, float] = field(default_factory=dict)
    summary: str = ""


def _runs_as(python: str, version: str) -> bool:
    """Whether ``python`` starts and is ``version`` (a pyenv shim on PATH may be neither)."""
    try:
        proc = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and proc.stdout.strip() == version


def find_python(version: str) -> Optional[str]:
    """An interpreter for ``version`` ("3.13"): this one, one on PATH, or pyenv's newest install."""
    candidates = [getattr(sys, "_base_executable", sys.executable), shutil.which(f"python{version}") or ""]
    for root in filter(None, (os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv"))):
        candidates += sorted(glob.glob(os.path.join(root, "versions", f"{version}.*", "bin", f"python{version}")),
                             reverse=True)
    return next((c for c in candidates if c and _runs_as(c, version)), None)


def _pinned(requirements: Path, name: str) -> str:
    for line in requirements.read_text(encoding="utf-8").splitlines():
        if line.split("#")[0].strip().startswith(f"{name}=="):
            return line.split("==", 1)[1].split("#")[0].strip()
    return ""


def ensure_venv(leg: Leg, python: str, log) -> Path:
    """The leg's venv, (re)made when its requirements or interpreter changed."""
    venv = VENVS / leg.release
    stamp = venv / ".installed"
    key = hashlib.sha256(leg.requirements.read_bytes() + python.encode()).hexdigest()
    if stamp.is_file() and stamp.read_text() == key:
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    log(f"{leg.name}: making {venv.relative_to(REPO)} with Python {leg.python} ({python})")
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(leg.requirements)], check=True)
    stamp.write_text(key)
    return venv


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def run_leg(leg: Leg, zip_path: Path, platform_zips: dict[str, Path], log, pytest_args: list[str]) -> LegResult:
    result = LegResult(leg.release, leg.name, leg.python)
    python = find_python(leg.python)
    if python is None:
        result.status, result.why = "skipped", f"no Python {leg.python} on this machine (pyenv install {leg.python})"
        return result
    t0 = time.monotonic()
    try:
        venv = ensure_venv(leg, python, log)
    except subprocess.CalledProcessError as exc:
        result.status, result.why = "failed", f"venv set-up failed: {exc}"
        return result
    result.seconds["venv"] = round(time.monotonic() - t0, 1)
    result.bpy, result.numpy = _pinned(leg.requirements, "bpy"), _pinned(leg.requirements, "numpy")
    py = str(venv / "bin" / "python")

    with tempfile.TemporaryDirectory(prefix=f"gid-blender-{leg.release}-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "BLENDER_"))}
        env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
                   BLENDER_USER_RESOURCES=str(Path(tmp) / "blender"),
                   PYTHONDONTWRITEBYTECODE="1", GID_TEST_EXTENSION_ZIP=str(zip_path),
                   GID_TEST_PLATFORM_ZIPS=json.dumps({p: str(z) for p, z in platform_zips.items()}))
        t0 = time.monotonic()
        proc = subprocess.run([py, str(REPO / "tests" / "installed" / "install.py"), str(zip_path), PACKAGE],
                              env=env, cwd=tmp, capture_output=True, text=True, timeout=600)
        result.seconds["install"] = round(time.monotonic() - t0, 1)
        if proc.returncode != 0:
            result.status, result.why = "failed", "install: " + _tail(proc.stderr + proc.stdout, 5)
            return result
        env.update(PYTHONPATH=str(REPO / "tests" / "installed"), GID_INSTALLED_EXTENSION=PACKAGE)
        files = sorted({str(p.relative_to(REPO)) for pattern in SUITE for p in REPO.glob(pattern)})
        t0 = time.monotonic()
        try:
            proc = subprocess.run([py, "-P", "-m", "pytest", "-q", "-p", "no:cacheprovider", *pytest_args, *files],
                                  env=env, cwd=REPO, capture_output=True, text=True, timeout=LEG_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            result.seconds["suite"] = round(time.monotonic() - t0, 1)
            result.status, result.why = "failed", f"the suite ran past {LEG_TIMEOUT_S} s"
            return result
        result.seconds["suite"] = round(time.monotonic() - t0, 1)
        counts = [ln for ln in proc.stdout.splitlines() if re.search(r"\d+ (passed|failed|errors?)\b", ln)]
        result.summary = counts[-1].strip("= ") if counts else ""
        if proc.returncode != 0:
            result.status, result.why = "failed", _tail(proc.stdout + proc.stderr)
        else:
            result.status = "passed"
    return result


def build_zips(out: Path, log) -> tuple[Path, dict[str, Path]]:
    """The zip of every platform gid builds: this machine's is installed, the others' manifests are
    checked against each Blender's own wheel selection (``tests/test_installed_extension.py``)."""
    from gid.gid_tools.packaging import SUPPORTED_PLATFORMS, build_extension, host_platform

    zips = {b.platform: b.path for b in build_extension(out, platforms=SUPPORTED_PLATFORMS, log=log)}
    return zips[host_platform()], zips


def table(results: list[LegResult]) -> str:
    rows = ["| Blender | bpy | Python | numpy | result | venv s | install s | suite s |",
            "|---|---|---|---|---|---|---|---|"]
    for r in results:
        s = r.seconds
        rows.append(f"| {r.name} | {r.bpy or '-'} | {r.python} | {r.numpy or '-'} | "
                    f"{r.status}{': ' + r.summary if r.summary else ''} | {s.get('venv', '-')} | "
                    f"{s.get('install', '-')} | {s.get('suite', '-')} |")
    return "\n".join(rows)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zip", type=Path, help="the extension zip to install (default: build it for this platform)")
    parser.add_argument("--only", nargs="+", metavar="RELEASE", help="releases to run (e.g. 4.2 5.3)")
    parser.add_argument("--require-all", action="store_true",
                        default=bool(os.environ.get("GID_REQUIRE_ALL_BLENDERS")),
                        help="a release skipped for a missing Python fails (default when GID_REQUIRE_ALL_BLENDERS "
                             "is set, as .ci/run does)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    args = parser.parse_args(argv)

    def log(msg: str) -> None:
        print(f"blender-matrix: {msg}", flush=True)

    legs = [leg for leg in LEGS if not args.only or leg.release in args.only]
    if args.only and len(legs) != len(args.only):
        parser.error(f"--only: choose from {', '.join(leg.release for leg in LEGS)}")
    t0 = time.monotonic()
    if args.zip:
        zip_path = args.zip.resolve()
        platform_zips = {}
    else:
        zip_path, platform_zips = build_zips(REPO / "out" / "extension", log)
    build_s = round(time.monotonic() - t0, 1)
    for path in platform_zips.values() or [zip_path]:
        log(f"extension zip {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    log(f"built in {build_s} s; installing {zip_path.name}")

    results: list[LegResult] = []
    for leg in legs:
        log(f"{leg.name}: starting")
        r = run_leg(leg, zip_path, platform_zips, log, args.pytest_args)
        results.append(r)
        took = sum(r.seconds.values())
        if r.status == "skipped":
            log(f"SKIPPED {leg.name}: {r.why}")
        else:
            log(f"{leg.name}: {r.status} in {took:.0f} s {r.summary}")
            if r.status == "failed":
                print(r.why, flush=True)
    print(table(results), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        sizes = {p: z.stat().st_size for p, z in platform_zips.items()} or {zip_path.name: zip_path.stat().st_size}
        args.json.write_text(json.dumps({"zip": str(zip_path), "zip_bytes": sizes, "build_s": build_s,
                                         "legs": [asdict(r) for r in results]}, indent=1))
    failed = [r for r in results if r.status == "failed" or (args.require_all and r.status == "skipped")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
