"""schemathesis, run as its command line runs it, against one service's OpenAPI document.

Its command line rather than its pytest plugin: the command line runs every phase (the schema's examples,
coverage of its edge values, random fuzzing, and stateful sequences built from the responses) with every
default check, and writes a JSON report that is read here (machine-readable), not its console output.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from devtools.suites import FULL_SETS_VARIABLE

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
CONFIG = Path(__file__).with_name("schemathesis.toml")
# CI replays the same cases every run (a failure there is reproducible with this seed); `test --full`
# draws a new seed each time, printed in the report, and tries more cases per operation.
CI_SEED = 20261204
CI_EXAMPLES = 50
FULL_EXAMPLES = 150


@dataclass(frozen=True)
class Target:
    """Where the document is read and where its operations are called."""

    schema_url: str
    base_url: str
    skip_internal: bool  # the gateway never routes /internal/


@dataclass(frozen=True)
class Run:
    report: dict
    console: str

    @property
    def failures(self) -> list[dict]:
        return self.report["failures"]

    @property
    def errors(self) -> list:
        return self.report["errors"]

    @property
    def cases(self) -> int:
        return self.report["test_cases"]["generated"]

    @property
    def refused_everything(self) -> list[str]:
        """Operations that answered only 401/403: the caller's credentials did not work there."""
        return self.report["warnings"]["missing_auth"]


def full() -> bool:
    return os.environ.get(FULL_SETS_VARIABLE) == "1"


def seed() -> int:
    return random.SystemRandom().randrange(2**31) if full() else CI_SEED


def fuzz(target: Target, token: str, report_path: Path, *, run_seed: int) -> Run:
    command = [
        str(SCHEMATHESIS), "--no-color", "--config-file", str(CONFIG), "run", target.schema_url,
        "--url", target.base_url,
        "--header", f"Authorization: Bearer {token}",
        "--max-examples", str(FULL_EXAMPLES if full() else CI_EXAMPLES),
        "--seed", str(run_seed),
        "--request-timeout", "15",
        "--report", "json", "--report-json-path", str(report_path),
        "--output-sanitize", "true",
    ]  # fmt: skip
    if target.skip_internal:
        command += ["--exclude-path-regex", "^/internal/"]
    answer = subprocess.run(
        command, capture_output=True, text=True, timeout=900, env=_environment(), cwd=report_path.parent
    )
    if not report_path.exists():
        raise AssertionError(
            f"schemathesis wrote no report (exit {answer.returncode}):\n{answer.stdout}\n{answer.stderr}"
        )
    return Run(report=json.loads(report_path.read_text()), console=answer.stdout + answer.stderr)


def _environment() -> dict:
    """The platform is on 127.0.0.1: no proxy the environment may name stands between."""
    return {
        name: value for name, value in os.environ.items() if name.lower() not in ("http_proxy", "all_proxy")
    }
