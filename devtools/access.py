"""What `up` prints at the end: where every process answers, and how to log in."""

from __future__ import annotations

from urllib.parse import quote

from devtools.console import display
from devtools.environment import demo_logins
from devtools.instance import Platform, host_and_port, url_host
from devtools.local_monitoring import monitoring_of, prometheus_pages
from devtools.programs import web_instances
from devtools.provision import RABBITMQ_PROMETHEUS_PORT


def print_access(platform: Platform) -> None:
    """Where to point a browser, and how to log in."""
    instance, topology = platform.instance, platform.topology
    print(f"\nPlatform instance {instance.name!r} is up:")
    for service in topology.services:
        base = f"http://127.0.0.1:{instance.port(service.port)}"
        print(f"  {service.name:<13} {base}/   admin {base}/admin/{service.name}/")
        for number, (_, port) in enumerate(web_instances(platform, service)[1:], start=2):
            print(f"  {'':<13} instance {number}: http://127.0.0.1:{port}/")
        if service.instances > 1 and (balancer := topology.balancer_port(service)) is not None:
            balanced = f"http://127.0.0.1:{instance.port(balancer)}/"
            print(f"  {'':<13} all {service.instances} for peers (balancer): {balanced}")
    print("Metrics (Prometheus text; not routed by the gateway):")
    for service in topology.services:
        web = f"http://127.0.0.1:{instance.port(service.port)}/metrics"
        worker = (
            f"http://127.0.0.1:{instance.port(service.worker_metrics_port)}/metrics"
            if service.worker_metrics_port is not None
            else "(no worker_metrics_port in topology.toml)"
        )
        print(f"  {service.name:<13} web {web}   worker {worker}")
    rabbitmq_host = host_and_port(platform.endpoints.broker_url, 5672)[0]
    print(
        f"  {'rabbitmq':<13} http://{url_host(rabbitmq_host)}:{RABBITMQ_PROMETHEUS_PORT}"
        f"/metrics/detailed?vhost={quote(instance.broker_vhost, safe='')}&family=queue_coarse_metrics"
    )
    for sandbox in topology.sandboxes:
        print(f"  {sandbox.name:<13} http://127.0.0.1:{instance.port(sandbox.port)}/   (sandbox)")
    print(f"  {'flower':<13} http://127.0.0.1:{instance.port(topology.flower_port)}/flower/")
    if topology.gateway is not None:
        gateway = f"http://127.0.0.1:{instance.port(topology.gateway.port)}"
        print(f"  {'gateway':<13} {gateway}/   health {gateway}/health   docs {gateway}/docs/")
        print(f"  {'admins':<13} {gateway}/admin/<service>/   (one staff login: {gateway}/admin/identity/)")
    if (monitoring := monitoring_of(platform)) is not None:
        pages = prometheus_pages(monitoring.prometheus_url)
        print(f"  {'prometheus':<13} {monitoring.prometheus_url}/   targets {pages['targets']}")
        print(f"  {'':<13} alerts {pages['alerts']}")
        print(f"  {'alertmanager':<13} {monitoring.alertmanager_url}/")
        print(f"  {'alerts':<13} {monitoring.receiver_url}/alerts   (what Alertmanager delivered)")
    logins = demo_logins()
    print("Demo logins:")
    print(f"  staff        {logins['DEMO_STAFF_EMAIL']} / {logins['DEMO_STAFF_PASSWORD']}")
    print(f"  customer     {logins['DEMO_CUSTOMER_EMAIL']} / {logins['DEMO_CUSTOMER_PASSWORD']}")
    print(f"Logs: python3 manage_all.py logs [service] -f   ({display(instance.log_dir)})")
