"""Bad inputs and faults lose nothing (issue 9): every case of ``gid selftest``, as a test.

The cases live in ``gid_tools/selftest.py`` (input, expected behaviour, how to build and run
it); the table ``gid selftest --markdown`` prints and these tests judge the same ``CASES`` with
the same ``run_case``, so they cannot disagree.
"""

from __future__ import annotations

import pytest

from gid.gid_engine import cli
from gid.gid_tools.selftest import CASES, run_case


def test_the_corpus_has_at_least_25_distinct_cases():
    ids = [c.id for c in CASES]
    assert len(ids) >= 25
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case):
    result = run_case(case)
    obs = result.observed
    detail = "" if obs is None else f"\nexit {obs.code}\nstdout: {obs.stdout!r}\nstderr: {obs.stderr!r}"
    assert result.passed, f"{case.id}: {'; '.join(result.failures)}{detail}"


def test_selftest_command_prints_the_table(capsys):
    assert cli.main(["selftest", "--markdown", "--case", "image-empty", "motion-nan"]) == 0
    out = capsys.readouterr().out
    rows = [ln for ln in out.splitlines() if ln.startswith("| ")]
    assert rows[0].startswith("| case | input | expected | observed")
    assert len(rows) == 3 and all(r.rstrip().endswith("| PASS |") for r in rows[1:])
    assert "2/2 cases passed" in out


def test_a_failing_case_fails_the_command(monkeypatch, capsys):
    """A case whose expectation is not met shows FAIL with the reason, and the command exits non-zero."""
    from dataclasses import replace

    from gid.gid_tools import selftest

    wrong = replace(next(c for c in CASES if c.id == "image-empty"), code=0)
    monkeypatch.setattr(selftest, "CASES", [wrong])
    with pytest.raises(SystemExit) as info:
        cli.main(["selftest"])
    assert info.value.code == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "exit code 2, expected 0" in out and "0/1 cases passed" in out


def test_unknown_case_is_a_clear_error(capsys):
    assert cli.main(["selftest", "--case", "no-such-case"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["gid: error: unknown selftest case(s): no-such-case"]
