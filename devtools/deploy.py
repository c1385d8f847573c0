"""What the deployment files (compose/, k8s/) share beyond the topology: the pinned third-party images, the
broker's vhost and user, how beat's liveness and process metrics work inside a container, and writing
generated files with a drift check.

compose/ is written by hand and checked against these (tests/deployment/test_compose.py); a renderer
imports them. Facts about the services themselves (ports, process sizes, who signs tokens, who calls whom)
are not here: they are the typed model's, `devtools.topology`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from devtools.topology import ROOT, Topology, load

# Third-party images, pinned (a minor or patch release; bumped on purpose, never by a rebuild).
IMAGES = {
    "python": "python:3.11-slim",
    "postgres": "postgres:16-alpine",
    "rabbitmq": "rabbitmq:3.13-management",
    "redis": "redis:7.4-alpine",
    "mailpit": "axllent/mailpit:v1.21",
    "prometheus": "prom/prometheus:v2.55.1",
    "alertmanager": "prom/alertmanager:v0.27.0",
    "grafana": "grafana/grafana:11.4.0",
    "loki": "grafana/loki:3.3.2",
    "alloy": "grafana/alloy:v1.5.1",
    "jaeger": "jaegertracing/all-in-one:1.64.0",
}
IMAGE_PREFIX = "order-platform/"  # the platform's own images: order-platform/<service host name>

# compose/rabbitmq/definitions.json declares them; every service's BROKER_URL uses them.
BROKER_VHOST = "platform"
BROKER_USER = "platform"

MIGRATE_COMMAND = "python manage.py migrate --noinput && python manage.py setup_messaging"

# Beat's liveness: its schedule file (a shelve, possibly several files) is written at start and synced
# every few minutes while beat runs; stale for longer than that means beat is stuck.
BEAT_SCHEDULE = "/tmp/celerybeat-schedule"  # noqa: S108  (inside the container; /tmp is its scratch space)
BEAT_CHECK = (
    "import glob, os, sys, time; "
    f"files = glob.glob('{BEAT_SCHEDULE}*'); "
    "sys.exit(0 if files and time.time() - max(map(os.path.getmtime, files)) < 300 else 1)"
)

# Metrics of a process group (gunicorn's workers, Celery's pool) are merged from files in this directory,
# inside the container; this module, run in front of the group's command, empties it before it starts.
MULTIPROC_DIR = "/tmp/prometheus-multiproc"  # noqa: S108  (the container's scratch space)
MULTIPROC_MODULE = "shared.observability.multiproc"
# A worker's metrics endpoint must be reachable from Prometheus' container or pod, not only on loopback.
WORKER_METRICS_ADDRESS = "0.0.0.0"  # noqa: S104


def yaml_document(value, header: str) -> str:
    """`value` as a YAML file (PyYAML): the header comment, then block-style YAML in the mapping's order."""
    import yaml  # imported here: the constants above are read by code that runs without the virtualenv

    class Dumper(yaml.SafeDumper):
        def increase_indent(self, flow: bool = False, indentless: bool = False):
            # Sequences indented under their key, as people write them (PyYAML puts `- ` level with it).
            return super().increase_indent(flow, False)

    body = yaml.dump(
        value, Dumper=Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=110
    )
    return header + body


def sync_files(files: dict[Path, str], *, check: bool, rerun: str) -> int:
    """Write the generated files whose content differs; with `check`, only name them and return 1."""
    stale = []
    for path, text in files.items():
        if path.exists() and path.read_text() == text:
            continue
        if check:
            stale.append(path.relative_to(ROOT))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(f"out of date (run {rerun}): " + ", ".join(map(str, stale)), file=sys.stderr)
        return 1
    return 0


def image_matrix(topology: Topology) -> list[dict]:
    """The images CI builds and pushes: each service's (the Dockerfile's `service` target, built with its
    name and port) and the gateway's (nginx and its verifier, the `gateway` target)."""
    matrix = [{"name": s.name, "port": s.port, "target": "service"} for s in topology.services]
    if topology.gateway is not None:
        matrix.append({"name": "gateway", "port": topology.gateway.port, "target": "gateway"})
    return matrix


if __name__ == "__main__":
    # CI's `plan` job: `python3 -m devtools.deploy image-matrix` prints the images job's matrix as JSON.
    if sys.argv[1:] != ["image-matrix"]:
        sys.exit("usage: python3 -m devtools.deploy image-matrix")
    print(json.dumps(image_matrix(load())))
