"""What an instance runs, as supervisord programs: each service's web instances, Celery worker and beat,
the sandboxes, Flower, the gateway and the monitoring. Pure planning from the topology and the instance
(tests/tooling checks it without starting anything)."""

from __future__ import annotations

from devtools import replica
from devtools.environment import broker_management_api, flower_env, replica_env, service_env
from devtools.instance import Platform
from devtools.local_gateway import gateway_programs
from devtools.local_monitoring import monitoring_programs
from devtools.paths import ROOT, VENV_BIN, VENV_PYTHON
from devtools.supervisor import Program
from devtools.topology import Sandbox, Service


def all_programs(platform: Platform) -> list[Program]:
    programs = [p for service in platform.topology.services for p in service_programs(platform, service)]
    sandboxes = [sandbox_program(platform, sandbox) for sandbox in platform.topology.sandboxes]
    tools = [flower_program(platform), *gateway_programs(platform), *monitoring_programs(platform)]
    standby = [replica.replica_program(platform)] if platform.replica else []
    return [*standby, *programs, *sandboxes, *tools]


def program_name(service_name: str, role: str, number: int = 1) -> str:
    """supervisord's name for a process: catalog-web, catalog-worker; web instance 2 is catalog-web-2."""
    return f"{service_name}-{role}" if number == 1 else f"{service_name}-{role}-{number}"


def web_instances(platform: Platform, service: Service) -> list[tuple[str, int]]:
    """(program name, shifted port) of each web instance of a service, instance 1 first."""
    ports = platform.topology.web_ports(service)
    return [
        (program_name(service.name, "web", number), platform.instance.port(port))
        for number, port in enumerate(ports, start=1)
    ]


def service_programs(platform: Platform, service: Service) -> list[Program]:
    """The web server instances, the Celery worker and the Celery beat of one service.

    Only the web server is scaled: the workers of one service already share its queues (raise
    worker_concurrency for more), and a second beat would send every periodic task twice.
    """
    web = [web_program(platform, service, name, port) for name, port in web_instances(platform, service)]
    instance = platform.instance
    celery = str(VENV_BIN / "celery")
    commands = {
        "worker": [
            celery, "-A", "config", "worker", "--loglevel", "INFO",
            "--concurrency", str(service.worker_concurrency), "--hostname", f"{service.name}@%h",
        ],
        "beat": [
            celery, "-A", "config", "beat", "--loglevel", "INFO",
            "--schedule", str(instance.var_dir / f"{service.name}-celerybeat-schedule"),
        ],
    }  # fmt: skip
    env = service_env(platform, service.name, instance.port(service.port), inherit=False)
    env |= replica_env(platform, service.name)
    worker = program_name(service.name, "worker")
    return [
        *web,
        Program(
            worker,
            metrics_wrapped(commands["worker"]),
            service.directory,
            env | metrics_env(platform, worker, service.worker_metrics_port),
        ),
        Program(program_name(service.name, "beat"), commands["beat"], service.directory, env),
    ]


def web_program(platform: Platform, service: Service, name: str, port: int) -> Program:
    """One gunicorn master; each web instance merges its own workers' metrics (its own directory)."""
    command = [
        str(VENV_BIN / "gunicorn"), "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
        "--workers", str(service.web_workers), "--threads", str(service.web_threads),
        "--worker-class", "gthread", "--timeout", "30", "--graceful-timeout", "10",
        "--no-control-socket",
    ]  # fmt: skip
    env = service_env(platform, service.name, port, inherit=False) | metrics_env(platform, name)
    env |= replica_env(platform, service.name)
    return Program(name, metrics_wrapped(command), service.directory, env)


def metrics_env(platform: Platform, program: str, metrics_port: int | None = None) -> dict[str, str]:
    """Multiprocess metrics for one process group (a web instance or a worker; docs/observability.md).

    Each group gets its own PROMETHEUS_MULTIPROC_DIR, wiped at start by shared.observability.multiproc;
    a worker also gets the port its main process serves metrics on. Beat counts nothing.
    """
    env = {"PROMETHEUS_MULTIPROC_DIR": str(platform.instance.metrics_dir / program)}
    if metrics_port is not None:
        env["WORKER_METRICS_PORT"] = str(platform.instance.port(metrics_port))
    return env


def metrics_wrapped(command: list[str]) -> list[str]:
    return [str(VENV_PYTHON), "-m", "shared.observability.multiproc", *command]


def flower_program(platform: Platform) -> Program:
    """Flower behind its own password (only the gateway knows it: staff reach it at /flower/), with the
    broker's management API for its queue page. Secrets go in the environment, not the command line."""
    port = platform.instance.port(platform.topology.flower_port)
    command = [
        str(VENV_BIN / "celery"), "--broker", platform.instance.broker_url,
        "--config", "shared.messaging.flower_config",  # names every queue for the broker page
        "flower", "--address=127.0.0.1", f"--port={port}", "--url_prefix=flower",  # served at /flower/
    ]  # fmt: skip
    env = {"PYTHONUNBUFFERED": "1", **flower_env(platform)}
    env["FLOWER_BROKER_API"] = broker_management_api(platform.instance.broker_url)
    env["FLOWER_SERVICES"] = ",".join(platform.topology.service_names)
    return Program("flower", command, ROOT, env)


def sandbox_program(platform: Platform, sandbox: Sandbox) -> Program:
    port = platform.instance.port(sandbox.port)
    command = [
        str(VENV_BIN / "gunicorn"), sandbox.app, "--bind", f"127.0.0.1:{port}", "--workers", "1",
        "--threads", str(sandbox.threads), "--worker-class", "gthread", "--timeout", "120",
        "--no-control-socket",
    ]  # fmt: skip
    env = {"REDIS_URL": platform.instance.redis_url, "PYTHONUNBUFFERED": "1"}
    return Program(sandbox.host_name, command, ROOT, env)
