"""Render the monitoring of a platform instance from the topology (devtools.topology): Prometheus' scrape
targets and Alertmanager's receiver address, and describe the processes that run them.

The alert rules (prometheus/rules), Alertmanager's routing (alertmanager/alertmanager.yml) and the Grafana
dashboards live in this folder once, and every run uses those same files: `manage_all.py up` points a
local Prometheus at them, compose mounts them. What differs between runs is only where things listen,
which is what this module renders:

- `prometheus_config()` builds the scrape configuration for any set of addresses; compose/render.py
  calls it with the containers' names, `write()` with an instance's shifted local ports. So the job
  names and labels that the rules and dashboards select on are the same everywhere.
- `write()` also renders the instance's copy of alertmanager.yml, in which the receiver address of the
  committed file (compose's) is replaced by the instance's own.

Standard library only, like gateway/render.py. The local Prometheus configuration is written as JSON,
which is YAML too (Prometheus reads it as such).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from devtools import topology as topology_model

ROOT = Path(__file__).resolve().parents[1]
MONITORING_DIR = ROOT / "monitoring"
RULES_DIR = MONITORING_DIR / "prometheus" / "rules"
RULE_TESTS_DIR = MONITORING_DIR / "prometheus" / "tests"
ALERTMANAGER_CONFIG = MONITORING_DIR / "alertmanager" / "alertmanager.yml"
DASHBOARDS_DIR = MONITORING_DIR / "grafana" / "dashboards"

# The receiver address as alertmanager.yml says it (compose's service name and port).
COMPOSE_RECEIVER_URL = "http://alert-receiver:9097/alerts"
RECEIVER_APP = "monitoring.alert_receiver:application"

# Job names: the rules and dashboards select on them, so every deployment uses the same ones.
JOB_WEB = "web"  # every service's web server (django-prometheus at /metrics), label service=<name>
JOB_WORKER = "worker"  # every service's Celery worker metrics endpoint, label service=<name>
JOB_FLOWER = "flower"
JOB_RABBITMQ = "rabbitmq"  # the broker node's aggregated metrics
JOB_RABBITMQ_QUEUES = "rabbitmq-queues"  # per-queue depths of the platform's vhost
JOB_PROMETHEUS = "prometheus"
JOB_ALERTMANAGER = "alertmanager"

ALERTMANAGER_BINARIES = ("prometheus-alertmanager", "alertmanager")  # Debian's name, upstream's name
DEBIAN_PACKAGES = ("prometheus", "prometheus-alertmanager")
INSTALL_HINT = f"apt-get install -y {' '.join(DEBIAN_PACKAGES)}"


class MonitoringError(Exception):
    """Something the caller should report in one line (a missing binary, a bad topology table)."""


@dataclass(frozen=True)
class Targets:
    """Where each scraped process answers, as host:port seen from Prometheus."""

    web: dict[str, tuple[str, ...]]  # service -> the address of each of its web instances
    workers: dict[str, str]  # service -> address of its worker's metrics endpoint
    flower: str | None
    rabbitmq: str
    vhost: str  # the broker vhost whose queues are reported
    prometheus: str
    alertmanager: str


def static_job(job: str, targets: list[dict], **options) -> dict:
    return {"job_name": job, **options, "static_configs": targets}


def per_service(addresses: dict[str, str | tuple[str, ...]], process: str) -> list[dict]:
    """One static group per service: every instance's address, labelled with the service and process."""
    return [
        {"targets": [address] if isinstance(address, str) else list(address),
         "labels": {"service": name, "process": process}}
        for name, address in addresses.items()
    ]  # fmt: skip


def scrape_configs(targets: Targets) -> list[dict]:
    """One job per kind of process; a service's processes carry `service` and `process` labels."""
    # honor_labels: our own processes may label a series with its service themselves (a gauge read
    # from another service's point of view); theirs wins over the target's, instead of being renamed.
    jobs = [
        static_job(JOB_PROMETHEUS, [{"targets": [targets.prometheus]}]),
        static_job(JOB_ALERTMANAGER, [{"targets": [targets.alertmanager]}]),
        static_job(JOB_WEB, per_service(targets.web, "web"), metrics_path="/metrics", honor_labels=True),
    ]
    if targets.workers:
        jobs.append(static_job(JOB_WORKER, per_service(targets.workers, "worker"), honor_labels=True))
    if targets.flower:
        jobs.append(static_job(JOB_FLOWER, [{"targets": [targets.flower]}], metrics_path="/flower/metrics"))
    jobs.append(static_job(JOB_RABBITMQ, [{"targets": [targets.rabbitmq]}]))
    jobs.append(
        # Per-queue depths (messages ready/unacknowledged) of the platform's vhost only: the broker is
        # shared by every instance, and the per-object endpoint can filter by vhost.
        static_job(
            JOB_RABBITMQ_QUEUES,
            [{"targets": [targets.rabbitmq]}],
            metrics_path="/metrics/detailed",
            params={"vhost": [targets.vhost], "family": ["queue_coarse_metrics"]},
        )
    )
    return jobs


def prometheus_config(
    targets: Targets, *, rule_files: list[str], scrape_interval: str, external_labels: dict[str, str]
) -> dict:
    """The whole prometheus.yml as a dict."""
    return {
        "global": {
            "scrape_interval": scrape_interval,
            "evaluation_interval": scrape_interval,
            "external_labels": external_labels,
        },
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [targets.alertmanager]}]}]},
        "rule_files": rule_files,
        "scrape_configs": scrape_configs(targets),
    }


def alertmanager_config(receiver_url: str) -> str:
    """alertmanager.yml with the receiver at `receiver_url` instead of compose's address."""
    text = ALERTMANAGER_CONFIG.read_text()
    if text.count(COMPOSE_RECEIVER_URL) != 1:
        raise MonitoringError(
            f"{ALERTMANAGER_CONFIG} must name the receiver {COMPOSE_RECEIVER_URL} exactly once"
        )
    return text.replace(COMPOSE_RECEIVER_URL, receiver_url)


# --- a local instance ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Monitoring:
    """The monitoring of one local instance, ports already shifted by the instance's offset."""

    instance: str
    var_dir: Path
    prometheus_port: int
    alertmanager_port: int
    receiver_port: int
    scrape_interval: str
    targets: Targets

    @property
    def config_dir(self) -> Path:
        return self.var_dir / "monitoring"

    @property
    def prometheus_config_file(self) -> Path:
        return self.config_dir / "prometheus.yml"

    @property
    def alertmanager_config_file(self) -> Path:
        return self.config_dir / "alertmanager.yml"

    @property
    def local_rules_dir(self) -> Path:
        """Extra rule files of this instance only (experiments, tests); Prometheus loads them too."""
        return self.config_dir / "rules.d"

    @property
    def alerts_file(self) -> Path:
        return self.var_dir / "alerts.jsonl"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://127.0.0.1:{self.alertmanager_port}"

    @property
    def receiver_url(self) -> str:
        return f"http://127.0.0.1:{self.receiver_port}"

    def health_urls(self) -> dict[str, str]:
        """What answers 200 once each process is ready."""
        return {
            "prometheus": f"{self.prometheus_url}/-/ready",
            "alertmanager": f"{self.alertmanager_url}/-/ready",
            "alert-receiver": f"{self.receiver_url}/health/live",
        }


def monitoring_of(
    topology: topology_model.Topology,
    instance: str,
    var_dir: Path,
    port_offset: int,
    *,
    rabbitmq_host: str,
    vhost: str,
    web_ports: dict[str, tuple[int, ...]] | None = None,
) -> Monitoring | None:
    """The instance's Monitoring (ports shifted by `port_offset`), or None when the topology has none.

    `web_ports`: the (shifted) port of every web instance per service, as manage_all.py runs them
    (`instances`, `up --scale`); without it each service has its one `port`.
    """
    table = topology.monitoring
    if table is None:
        return None
    # RABBITMQ_METRICS_PORT: a broker whose plugin listens elsewhere (manage_all.py honours it too).
    rabbitmq_port = int(os.environ.get("RABBITMQ_METRICS_PORT", table.rabbitmq_metrics_port))
    local = "127.0.0.1"
    web_ports = web_ports or {s.name: (s.port + port_offset,) for s in topology.services}
    targets = Targets(
        web={s.name: tuple(f"{local}:{port}" for port in web_ports[s.name]) for s in topology.services},
        workers={
            s.name: f"{local}:{s.worker_metrics_port + port_offset}"
            for s in topology.services
            if s.worker_metrics_port is not None
        },
        flower=f"{local}:{topology.flower_port + port_offset}",
        rabbitmq=f"{host_for_url(rabbitmq_host)}:{rabbitmq_port}",
        vhost=vhost,
        prometheus=f"{local}:{table.prometheus_port + port_offset}",
        alertmanager=f"{local}:{table.alertmanager_port + port_offset}",
    )
    return Monitoring(
        instance=instance,
        var_dir=var_dir,
        prometheus_port=table.prometheus_port + port_offset,
        alertmanager_port=table.alertmanager_port + port_offset,
        receiver_port=table.alert_receiver_port + port_offset,
        scrape_interval=table.scrape_interval,
        targets=targets,
    )


def host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def local_prometheus_config(monitoring: Monitoring) -> dict:
    rule_files = [str(RULES_DIR / "*.yml"), str(monitoring.local_rules_dir / "*.yml")]
    external = {"platform_instance": monitoring.instance}
    return prometheus_config(
        monitoring.targets,
        rule_files=rule_files,
        scrape_interval=monitoring.scrape_interval,
        external_labels=external,
    )


def write(monitoring: Monitoring) -> list[Path]:
    """Write the instance's prometheus.yml and alertmanager.yml; returns their paths."""
    monitoring.local_rules_dir.mkdir(parents=True, exist_ok=True)
    prometheus = json.dumps(local_prometheus_config(monitoring), indent=2)
    monitoring.prometheus_config_file.write_text(
        "# Rendered by monitoring/render.py from topology.toml (JSON is YAML): `up` overwrites it.\n"
        + prometheus
        + "\n"
    )
    monitoring.alertmanager_config_file.write_text(
        "# Rendered by monitoring/render.py from monitoring/alertmanager: `up` overwrites it.\n"
        + alertmanager_config(f"{monitoring.receiver_url}/alerts")
    )
    return [monitoring.prometheus_config_file, monitoring.alertmanager_config_file]


# --- processes -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Process:
    """A long-running process of the instance's monitoring (manage_all.py makes it a supervisord program)."""

    name: str
    command: list[str]
    environment: dict[str, str]


def binaries(*, required: bool = True) -> dict[str, str]:
    """prometheus, promtool and alertmanager on PATH; MonitoringError naming what to install if one is
    missing (or, with required=False, the bare names, for callers that only need the programs' names)."""
    found = {
        "prometheus": shutil.which("prometheus"),
        "promtool": shutil.which("promtool"),
        "alertmanager": next(filter(None, map(shutil.which, ALERTMANAGER_BINARIES)), None),
    }
    missing = [name for name, path in found.items() if path is None]
    if missing and required:
        raise MonitoringError(
            f"monitoring needs {', '.join(missing)}, which cannot be found on PATH: "
            f"install them (`{INSTALL_HINT}`) and run again"
        )
    return {name: path or name for name, path in found.items()}


def digest(*paths: Path) -> str:
    """Short sha256 over files: part of a program's section, so supervisord restarts it when they change."""
    sha = hashlib.sha256()
    for path in paths:
        sha.update(path.name.encode() + b"\0" + (path.read_bytes() if path.exists() else b""))
    return sha.hexdigest()[:16]


def processes(monitoring: Monitoring, found: dict[str, str], gunicorn: str) -> list[Process]:
    """Prometheus, Alertmanager and the alert receiver of the instance."""
    rules = sorted(RULES_DIR.glob("*.yml")) + sorted(monitoring.local_rules_dir.glob("*.yml"))
    prometheus = [
        found["prometheus"],
        f"--config.file={monitoring.prometheus_config_file}",
        f"--storage.tsdb.path={monitoring.var_dir / 'prometheus'}",
        "--storage.tsdb.retention.time=2d",
        f"--web.listen-address=127.0.0.1:{monitoring.prometheus_port}",
        "--web.enable-lifecycle",  # POST /-/reload re-reads the rule files without a restart
        f"--web.external-url={monitoring.prometheus_url}/",  # the links in alerts (generatorURL)
    ]
    alertmanager = [
        found["alertmanager"],
        f"--config.file={monitoring.alertmanager_config_file}",
        f"--storage.path={monitoring.var_dir / 'alertmanager'}",
        f"--web.listen-address=127.0.0.1:{monitoring.alertmanager_port}",
        "--cluster.listen-address=",  # one Alertmanager per instance: no gossip port to collide on
        f"--web.external-url={monitoring.alertmanager_url}/",
    ]
    receiver = [
        gunicorn, RECEIVER_APP, "--bind", f"127.0.0.1:{monitoring.receiver_port}", "--workers", "1",
        "--threads", "4", "--worker-class", "gthread", "--timeout", "30", "--no-control-socket",
    ]  # fmt: skip
    return [
        Process(
            "prometheus",
            prometheus,
            {"MONITORING_CONFIG_DIGEST": digest(monitoring.prometheus_config_file, *rules)},
        ),
        Process(
            "alertmanager",
            alertmanager,
            {"MONITORING_CONFIG_DIGEST": digest(monitoring.alertmanager_config_file)},
        ),
        Process(
            "alert-receiver",
            receiver,
            {"ALERTS_FILE": str(monitoring.alerts_file), "PYTHONUNBUFFERED": "1"},
        ),
    ]


def check(monitoring: Monitoring, found: dict[str, str]) -> None:
    """`promtool check config` on the rendered configuration (which checks the rule files too)."""
    command = [found["promtool"], "check", "config", str(monitoring.prometheus_config_file)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()
        raise MonitoringError(f"promtool refuses {monitoring.prometheus_config_file}:\n{output}")
