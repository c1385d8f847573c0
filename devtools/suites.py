"""The test suites and their summary: one pytest process per suite, each in its own environment, and
the counts read from pytest's JUnit XML report (machine-readable), not from its console output."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

from devtools.console import PlatformError, display, step
from devtools.environment import SHARED_TESTS_ROLE, caller_env, service_env
from devtools.instance import Platform
from devtools.paths import ROOT, SANDBOX_DIR, SHARED_DIR, VENV_PYTHON

PYTEST_COMMAND = ("-m", "pytest", "-q", "-ra", "-p", "no:cacheprovider")
# Cross-service suites beside `system`, each on its own platform instance: `manage_all.py test browser`.
CROSS_SERVICE_SUITES = {
    "browser": "tests/browser",
    "security": "tests/security",
    "contracts": "tests/contracts",
    "chaos": "tests/chaos",
}
# Suites that start a platform instance (and check the gateway's and monitoring's files): they need nginx
# and Prometheus' tools on the machine first.
PLATFORM_SUITES = frozenset({"system", *CROSS_SERVICE_SUITES})
# The chaos suite's faults restart what its platform depends on: it gets an instance of its own (ports
# shifted by 2000, its own databases, vhost and Redis database), so nothing of e2e's is in its way.
# The contracts suite's fuzzer writes thousands of users, products and orders, with its own gateway limits
# (raised): it gets an instance of its own too.
# Both run without the read replica (devtools.replica): the chaos figures compare with earlier runs', and
# the fuzzer needs no second copy of what it writes.
OWN_INSTANCES = {
    "chaos": {
        "E2E_INSTANCE": "chaos",
        "E2E_PORT_OFFSET": "2000",
        "E2E_REDIS_DB": "2",
        "PLATFORM_REPLICA": "off",
    },
    "contracts": {
        "E2E_INSTANCE": "contracts",
        "E2E_PORT_OFFSET": "3000",
        "E2E_REDIS_DB": "3",
        "PLATFORM_REPLICA": "off",
    },
}
# Set by `test --full`: suites with a slow full set (chaos) run it instead of their core set.
FULL_SETS_VARIABLE = "PLATFORM_TESTS_FULL"
NO_TESTS_COLLECTED = 5  # pytest's exit status: a suite that runs nothing has failed


@dataclass(frozen=True)
class Suite:
    """One pytest run: its name, working directory, default selection and environment."""

    name: str
    directory: Path
    arguments: tuple[str, ...]
    env: dict


@dataclass(frozen=True)
class Counts:
    tests: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    seconds: float = 0.0

    @property
    def passed(self) -> int:
        return self.tests - self.failures - self.errors - self.skipped


@dataclass(frozen=True)
class SuiteResult:
    name: str
    status: int  # pytest's exit status
    counts: Counts | None  # None when pytest wrote no report (it could not start or collect)

    @property
    def ok(self) -> bool:
        return self.status == 0  # pytest's 5 ("no tests collected") is a failure too

    @property
    def failed(self) -> int:
        """Failures and errors; a suite that did not pass counts at least one, whatever the report says."""
        counted = self.counts.failures + self.counts.errors if self.counts else 0
        return counted if self.ok or counted else max(counted, 1)

    @property
    def summary(self) -> str:
        if self.counts is None:
            return "no report (pytest could not run the suite)"
        c = self.counts
        parts = [f"{c.passed} passed", f"{c.failures} failed", f"{c.errors} errors", f"{c.skipped} skipped"]
        text = ", ".join(parts) + f" in {c.seconds:.0f}s"
        if self.status == NO_TESTS_COLLECTED:
            text += " (no test collected)"
        return text


def all_suites(platform: Platform) -> list[Suite]:
    """shared, then every service in topology order, then the cross-service suites: system (tests/),
    browser, security and chaos, each starting its platform instance for itself (e2e; chaos its own)."""
    shared_env = service_env(platform, SHARED_TESTS_ROLE) | {"DJANGO_SETTINGS_MODULE": "tests.settings"}
    suites = [Suite("shared", SHARED_DIR, (), shared_env)]
    if SANDBOX_DIR.is_dir():
        suites.append(Suite("sandbox", ROOT, ("sandbox",), caller_env() | {"PYTHONUNBUFFERED": "1"}))
    for service in platform.topology.services:
        env = service_env(platform, service.name, platform.instance.port(service.port))
        suites.append(Suite(service.name, service.directory, (), env))
    env = caller_env() | {"PYTHONUNBUFFERED": "1"}
    others = tuple(f"--ignore={path}" for path in CROSS_SERVICE_SUITES.values())
    suites.append(Suite("system", ROOT, ("tests", *others), env))
    suites += [
        Suite(name, ROOT, (path,), env | OWN_INSTANCES.get(name, {}))
        for name, path in CROSS_SERVICE_SUITES.items()
    ]
    return suites


def select_suites(suites: list[Suite], names: list[str]) -> list[Suite]:
    """The named suites in the canonical order (all of them when none is named)."""
    known = [suite.name for suite in suites]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise PlatformError(f"unknown test suite {', '.join(unknown)}: choose from {', '.join(known)}")
    return [suite for suite in suites if not names or suite.name in names]


def with_full_sets(suite: Suite) -> Suite:
    """The suite with its slow full sets (the chaos suite's every scenario) asked for: `test --full`."""
    return dataclasses.replace(suite, env=suite.env | {FULL_SETS_VARIABLE: "1"})


def pytest_command(suite: Suite, pytest_arguments: list[str], report: Path) -> list[str]:
    """pytest for `suite`; test files or node ids given after `--` replace its default selection."""
    color = ["--color=yes"] if sys.stdout.isatty() else []
    names_tests = any(
        not argument.startswith("-") and (suite.directory / argument.split("::")[0]).exists()
        for argument in pytest_arguments
    )
    selection = () if names_tests else suite.arguments
    return [str(VENV_PYTHON), *PYTEST_COMMAND, *color, f"--junit-xml={report}", *selection, *pytest_arguments]


def run_suite(suite: Suite, pytest_arguments: list[str], reports: Path) -> SuiteResult:
    """Run pytest for one suite, its output streaming through; the result from its JUnit XML report."""
    if not suite.directory.is_dir():
        print(f"{display(suite.directory)} does not exist", file=sys.stderr)
        return SuiteResult(suite.name, 1, None)
    step(f"Test suite {suite.name} ({display(suite.directory)})")
    reports.mkdir(parents=True, exist_ok=True)
    report = reports / f"{suite.name}.xml"
    report.unlink(missing_ok=True)
    status = subprocess.run(
        pytest_command(suite, pytest_arguments, report), cwd=suite.directory, env=suite.env
    ).returncode
    return SuiteResult(suite.name, status, read_report(report))


def read_report(report: Path) -> Counts | None:
    """The counts of a JUnit XML report (pytest writes one <testsuite> inside <testsuites>)."""
    try:
        root = ElementTree.parse(report).getroot()  # noqa: S314 (our own pytest wrote it)
    except (FileNotFoundError, ElementTree.ParseError):
        return None
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    total = Counts()
    for element in suites:
        total = Counts(
            tests=total.tests + int(element.get("tests", 0)),
            failures=total.failures + int(element.get("failures", 0)),
            errors=total.errors + int(element.get("errors", 0)),
            skipped=total.skipped + int(element.get("skipped", 0)),
            seconds=total.seconds + float(element.get("time", 0)),
        )
    return total


def print_summary(results: list[SuiteResult]) -> None:
    print()
    for result in results:
        verdict = "" if result.ok else f"  [FAILED, pytest exit {result.status}]"
        print(f"{result.name}: {result.summary}{verdict}")
    passed = sum(result.counts.passed for result in results if result.counts)
    failed = sum(result.failed for result in results)
    print(f"{passed} passed, {failed} failed")
