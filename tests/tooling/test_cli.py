"""manage_all.py as developers and CI call it (a subprocess, the real command line)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def manage_all(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage_all.py"), *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_suite_that_collects_no_test_fails_the_run_and_says_so():
    """pytest's exit 5 ("no tests ran") must not pass silently: the summary comes from its JUnit report."""
    result = manage_all("test", "--no-install", "sandbox", "--", "-k", "no_test_has_this_name")

    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == "0 passed, 1 failed", lines[-3:]
    assert "sandbox: 0 passed, 0 failed, 0 errors, 0 skipped" in result.stdout
    assert "(no test collected)  [FAILED, pytest exit 5]" in result.stdout


def test_an_unknown_suite_or_service_is_one_line_not_a_traceback():
    unknown_suite = manage_all("test", "--no-install", "nosuch")
    unknown_service = manage_all("logs", "nosuch")

    assert unknown_suite.returncode == 1 and "unknown test suite nosuch" in unknown_suite.stderr
    assert unknown_service.returncode == 1 and "unknown service 'nosuch'" in unknown_service.stderr
    assert "Traceback" not in unknown_suite.stderr + unknown_service.stderr


def test_the_entry_point_stays_thin():
    lines = (ROOT / "manage_all.py").read_text().splitlines()
    assert len(lines) <= 40, len(lines)
