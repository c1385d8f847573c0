"""The Dockerfile (service images and the gateway image), linted and cross-checked offline."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from devtools import topology as topology_model
from devtools.instance import load_platform
from devtools.programs import service_programs
from tests.deployment.checks import (
    ROOT,
    run,
    tool,
    without_venv,
)

# --- Dockerfile ---------------------------------------------------------------------------------------------


def test_hadolint_passes_on_the_dockerfile():
    result = run(tool("hadolint"), "--config", ".hadolint.yaml", "Dockerfile")
    assert result.returncode == 0, f"hadolint:\n{result.stdout}{result.stderr}"


def test_hadolint_catches_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN apt-get install curl\n")
    result = run(tool("hadolint"), "--config", str(ROOT / ".hadolint.yaml"), str(bad))
    assert result.returncode != 0 and "DL3006" in result.stdout


def test_every_ignored_hadolint_rule_says_why():
    lines = (ROOT / ".hadolint.yaml").read_text().splitlines()
    config = yaml.safe_load("\n".join(lines)) or {}
    for rule in config.get("ignored") or []:
        line = next(line for line in lines if rule in line and line.strip().startswith("-"))
        assert "#" in line, f".hadolint.yaml ignores {rule} without a reason on its line"


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def dockerfile_stage(name: str) -> list[tuple[str, str]]:
    """The instructions of one `FROM ... AS name` stage, its FROM first."""
    instructions = dockerfile_instructions()
    starts = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    for start, end in zip(starts, [*starts[1:], len(instructions)], strict=True):
        if instructions[start][1].split()[-1] == name:
            return instructions[start:end]
    raise AssertionError(f"the Dockerfile has no stage {name}")


def test_dockerfile_is_multi_stage_slim_non_root_with_a_healthcheck():
    instructions = dockerfile_instructions()
    froms = [rest for keyword, rest in instructions if keyword == "FROM"]
    # The default target (the last stage) is a service, built on the slim runtime every image shares.
    assert froms[-1] == "runtime AS service"
    assert dockerfile_stage("runtime")[0] == ("FROM", "${PYTHON_IMAGE} AS runtime")
    args = dict(
        rest.split("=", 1) if "=" in rest else (rest, "")
        for keyword, rest in instructions
        if keyword == "ARG"
    )
    assert len(froms) >= 2, "a builder stage and a final stage"
    assert args.get("PYTHON_IMAGE") == "python:3.11-slim"
    assert "SERVICE" in args
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users and not users[-1].startswith(("0", "root")), "the final stage runs as a non-root user"
    healthchecks = [rest for keyword, rest in instructions if keyword == "HEALTHCHECK"]
    assert healthchecks and "urllib" in healthchecks[-1] and "/health/live" in healthchecks[-1]
    assert "curl" not in healthchecks[-1] and "SERVICE_PORT" in healthchecks[-1]
    assert ("WORKDIR", "/app/services/${SERVICE}") in instructions
    runs = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    assert "collectstatic" in runs and "requirements/base.txt" in runs
    assert "migrate" not in runs, "migrations run as a one-shot job, never in the image build or at start"
    env = " ".join(rest for keyword, rest in instructions if keyword == "ENV")
    assert "STATIC_ROOT=/app/static" in env


def test_image_command_is_the_web_server_as_manage_all_starts_it():
    platform = load_platform()
    service = platform.topology.services[0]
    web = next(p for p in service_programs(platform, service) if p.name.endswith("-web"))
    expected = without_venv(web.command)
    substitutions = {
        f"127.0.0.1:{platform.instance.port(service.port)}": "0.0.0.0:${SERVICE_PORT}",
        str(service.web_workers): "${WEB_WORKERS}",
        str(service.web_threads): "${WEB_THREADS}",
    }
    for index, word in enumerate(expected):
        previous = expected[index - 1] if index else ""
        if previous in ("--bind", "--workers", "--threads"):
            expected[index] = substitutions[word]
    command = json.loads(next(rest for keyword, rest in dockerfile_stage("service") if keyword == "CMD"))
    assert command[:2] == ["sh", "-c"]
    assert command[2] == "exec " + " ".join(expected)


def test_gateway_image_renders_its_configuration_then_runs_nginx_as_non_root():
    stage = dockerfile_stage("gateway")
    assert stage[0] == ("FROM", "runtime AS gateway")
    assert ("USER", "10001:10001") in stage
    assert ("COPY", "gateway ./gateway") in stage and ("COPY", "nginx ./nginx") in stage
    command = json.loads(next(rest for keyword, rest in stage if keyword == "CMD"))[2]
    render, _, start = command.partition(" && ")
    assert render == "python -m gateway.render --container /tmp/gateway"
    assert start.startswith("exec nginx ") and "-c /tmp/gateway/nginx/nginx.conf" in start
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert "!gateway" in ignored and "!nginx" in ignored


def test_container_gateway_configuration_passes_nginx_t(tmp_path):
    """The configuration the gateway image renders: upstreams by DNS name, logs to the container's
    streams, every listener on all addresses. nginx -t resolves upstream names, which exist only on
    compose's network or in a cluster, so the check runs with each name replaced by 127.0.0.1."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.fail("nginx is missing: `python3 manage_all.py up` or .ci/run installs it")
    # Run where the image runs it: in /app as the runtime and gateway stages fill it, so a module the
    # renderer imports but the Dockerfile or .dockerignore leaves out fails here, not in the container.
    app = image_app_directory(tmp_path / "app", stages=("runtime", "gateway"))
    conf = subprocess.run(
        [sys.executable, "-m", "gateway.render", "--container", str(tmp_path)],
        cwd=app, capture_output=True, text=True, check=True,
        env={**os.environ, "FLOWER_BASIC_AUTH": "flower:not-a-real-password"},  # the container gets Flower's
    ).stdout.strip()  # fmt: skip
    text = Path(conf).read_text()
    topology = topology_model.load()
    for service in topology.services:
        assert f"server {service.host_name}:{service.port} " in text
    verifier = f"gateway-verifier:{topology.gateway.verifier_port}"
    assert f"server {verifier};" in text and "listen 127.0.0.1" not in text
    assert "access_log /dev/stdout gateway;" in text and "error_log /dev/stderr" in text
    assert (tmp_path / "nginx" / "docs" / "swagger-ui" / "swagger-ui-bundle.js").is_file()
    # The events' page and AsyncAPI document, from the contracts/asyncapi.json the image copies.
    assert (tmp_path / "nginx" / "docs" / "events.html").is_file()
    served = (tmp_path / "nginx" / "docs" / "asyncapi.json").read_bytes()
    assert served == (app / "contracts" / "asyncapi.json").read_bytes()
    local = re.sub(r"server ([a-z][a-z0-9-]*):(\d+)", r"server 127.0.0.1:\2", text)
    Path(conf).write_text(local)
    check = subprocess.run(
        [nginx, "-t", "-c", conf, "-p", str(tmp_path / "nginx"), "-e", str(tmp_path / "error.log")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr


def image_app_directory(app: Path, *, stages: tuple[str, ...]) -> Path:
    """/app as the `stages` of the Dockerfile fill it: each `COPY <source>... <dest>` from the build
    context (relative destinations under /app), each source also let through by .dockerignore."""
    allowed = [line[1:] for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")]
    app.mkdir(parents=True)
    for stage in stages:
        for keyword, rest in dockerfile_stage(stage):
            if keyword != "COPY" or rest.startswith("--from"):
                continue
            *sources, dest = rest.split()
            if not dest.startswith("./"):
                continue  # outside /app (the requirements, during the build)
            for source in sources:
                assert any(source == a or source.startswith(f"{a}/") for a in allowed), (
                    f"COPY {source}: .dockerignore leaves it out of the build context"
                )
                if (ROOT / source).is_dir():
                    ignore = shutil.ignore_patterns("__pycache__", "tests")
                    shutil.copytree(ROOT / source, app / dest, ignore=ignore)
                    continue
                target = app / dest / Path(source).name if dest.endswith("/") else app / dest
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / source, target)
    return app


def test_image_app_directory_lacks_what_the_dockerfile_does_not_copy(tmp_path):
    app = image_app_directory(tmp_path / "app", stages=("runtime", "gateway"))
    assert (app / "gateway" / "render.py").is_file() and (app / "topology.toml").is_file()
    assert not (app / "devtools" / "cli.py").exists() and not (app / "services").exists()
    broken = subprocess.run(
        [sys.executable, "-c", "import devtools.instance"], cwd=app, capture_output=True, text=True
    )
    assert broken.returncode != 0 and "ModuleNotFoundError" in broken.stderr


def test_dockerignore_keeps_secrets_and_the_virtualenv_out():
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    assert lines[lines.index("*")] == "*", "an allow-list: everything is excluded first"
    for needed in ("!requirements/base.txt", "!topology.toml", "!shared/shared", "!services"):
        assert needed in lines
    assert "**/*.pem" in lines and "**/.env" in lines
