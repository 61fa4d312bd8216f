"""The Blender legs' runner (``tools/blender_matrix.py``): its matrix, its Python lookup, its skips."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

import blender_matrix as bm


def test_every_leg_pins_its_bpy_and_numpy_for_its_python():
    assert [leg.release for leg in bm.LEGS] == ["4.2", "4.5", "5.0", "5.1", "5.2", "5.3"]
    for leg in bm.LEGS:
        bpy, numpy = bm._pinned(leg.requirements, "bpy"), bm._pinned(leg.requirements, "numpy")
        assert bpy.startswith(leg.release + "."), (leg, bpy)
        # Blender 4.2 - 5.0: Python 3.11 and numpy 1.26; 5.1+: Python 3.13 and numpy 2.
        assert (leg.python, numpy.split(".")[0]) == (("3.11", "1") if leg.release < "5.1" else ("3.13", "2"))
        assert bm._pinned(leg.requirements, "pytest")
        names = {ln.split("==")[0] for ln in leg.requirements.read_text().splitlines() if "==" in ln}
        assert names == {"bpy", "numpy", "pytest"}  # nothing of the extension's: its zip brings that


def test_this_python_is_found_and_a_missing_one_is_none():
    here = "%d.%d" % sys.version_info[:2]
    found = bm.find_python(here)
    assert found is not None and bm._runs_as(found, here)
    assert bm.find_python("3.99") is None


def test_a_leg_without_its_python_is_skipped_with_a_line_and_fails_only_when_required(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bm, "find_python", lambda version: None)
    monkeypatch.delenv("GID_REQUIRE_ALL_BLENDERS", raising=False)  # .ci/run sets it
    zip_path = tmp_path / "gid.zip"
    zip_path.write_bytes(b"PK")
    assert bm.main(["--zip", str(zip_path), "--only", "5.3", "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "SKIPPED Blender 5.3: no Python 3.13 on this machine" in out
    assert "| Blender 5.3 | - | 3.13 | - | skipped |" in out
    assert bm.main(["--zip", str(zip_path), "--only", "5.3", "--require-all"]) == 1
    monkeypatch.setenv("GID_REQUIRE_ALL_BLENDERS", "1")  # what .ci/run sets
    assert bm.main(["--zip", str(zip_path), "--only", "5.3"]) == 1


def test_an_unknown_release_is_refused(capsys):
    with pytest.raises(SystemExit) as exc:
        bm.main(["--zip", "x.zip", "--only", "3.6"])
    assert exc.value.code == 2 and "choose from 4.2, 4.5, 5.0, 5.1, 5.2, 5.3" in capsys.readouterr().err
