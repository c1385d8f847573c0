"""The broker's part of a backup: one instance's definitions (queues, exchanges, bindings, policies,
vhost parameters) taken out of `rabbitmqctl export_definitions`, and imported again into any vhost.

`rabbitmqctl` rather than the management API: it needs no plugin, and `up` already uses it for vhosts.
The export is the whole broker, so it is narrowed to what the instance owns. A vhost may be shared (the
"dev" instance's, `/` by default, also carries the shared package's test queues), so the queues kept
are the platform's own (`<service>.*`, `domain.*`), with the exchanges and bindings that serve them.
Users, permissions and cluster-wide parameters stay out: no credentials in a backup, and `up` grants the
broker user its vhost. Messages are not definitions: what sat in a queue at backup time is not kept
(devtools.restore republishes the events a consumer had not recorded; sweeps redo lost local tasks).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Sequence

from devtools.console import PlatformError
from devtools.provision import run_rabbitmqctl

VHOST_SCOPED = ("queues", "exchanges", "bindings", "policies", "parameters")
PLATFORM_PREFIX = "domain."  # the platform's exchanges and queues beside each service's own


def rabbitmqctl_path() -> str:
    found = shutil.which("rabbitmqctl")
    if found is None:
        raise PlatformError(
            "rabbitmqctl is not available here: backup and restore read and write the broker's definitions "
            "with it (install rabbitmq-server's tools, or run on the broker's machine)"
        )
    return found


def export_instance(rabbitmqctl: str, vhost: str, services: Sequence[str]) -> dict:
    """The definitions of the platform's entities in `vhost`, without vhost fields (importable anywhere)."""
    everything = json.loads(run_rabbitmqctl(rabbitmqctl, "-q", "export_definitions", "-"))
    if vhost not in {entry["name"] for entry in everything.get("vhosts", [])}:
        raise PlatformError(
            f"the RabbitMQ vhost {vhost!r} does not exist: the instance was never provisioned "
            "(`python3 manage_all.py up` with its PLATFORM_INSTANCE)"
        )
    return scope_to_platform(everything, vhost, services)


def scope_to_platform(everything: dict, vhost: str, services: Sequence[str]) -> dict:
    """What of a whole-broker export belongs to the platform in `vhost`.

    Only durable entities that outlive connections: a worker's reply and control queues are declared
    again by the worker, and Celery's delayed-delivery queues by every worker at start.
    """
    here = {
        kind: [_without_vhost(item) for item in everything.get(kind, []) if item.get("vhost") == vhost]
        for kind in VHOST_SCOPED
    }
    queues = [
        queue
        for queue in here["queues"]
        if is_platform_queue(queue["name"], services) and _outlives_connections(queue)
    ]
    durable = {
        exchange["name"]: exchange
        for exchange in here["exchanges"]
        if _outlives_connections(exchange) and not exchange["name"].startswith("amq.")  # the broker's own
    }
    queue_names = {queue["name"] for queue in queues}
    bindings = [
        binding
        for binding in here["bindings"]
        if binding["source"] in durable
        and binding["destination_type"] == "queue"
        and binding["destination"] in queue_names
    ]
    return {
        "vhost": vhost,
        "rabbitmq_version": everything.get("rabbitmq_version", ""),
        "queues": queues,
        "exchanges": _exchanges_serving(durable, queues, bindings),
        "bindings": bindings,
        "policies": here["policies"],
        "parameters": here["parameters"],
    }


def _outlives_connections(entity: dict) -> bool:
    return bool(entity.get("durable")) and not entity.get("auto_delete")


def _exchanges_serving(durable: dict[str, dict], queues: list[dict], bindings: list[dict]) -> list[dict]:
    """The platform's own exchanges, those bound to its queues and those its queues dead-letter to, and
    the alternate exchange of each (domain.events -> domain.unroutable)."""
    names = {name for name in durable if name.startswith(PLATFORM_PREFIX)}
    names |= {binding["source"] for binding in bindings}
    names |= {queue.get("arguments", {}).get("x-dead-letter-exchange") for queue in queues}
    names &= set(durable)
    names |= {durable[name].get("arguments", {}).get("alternate-exchange") for name in names}
    return [durable[name] for name in sorted(names & set(durable))]


def is_platform_queue(name: str, services: Sequence[str]) -> bool:
    return name.startswith(PLATFORM_PREFIX) or any(name.startswith(f"{service}.") for service in services)


def _without_vhost(item: dict) -> dict:
    return {key: value for key, value in item.items() if key != "vhost"}


def for_vhost(scoped: dict, vhost: str) -> dict:
    """An instance's definitions as an import document for `vhost` (another instance's, or the same)."""
    return {kind: [{**item, "vhost": vhost} for item in scoped.get(kind, [])] for kind in VHOST_SCOPED}


def import_into(rabbitmqctl: str, scoped: dict, vhost: str) -> None:
    """Declare the definitions in `vhost` (which must exist); entities already there with the same
    properties are left as they are, as a repeated declaration would. The document goes through stdin:
    rabbitmqctl may read files as another user than ours."""
    run_rabbitmqctl(rabbitmqctl, "-q", "import_definitions", stdin=json.dumps(for_vhost(scoped, vhost)))


def platform_queue_depths(rabbitmqctl: str, vhost: str, services: Sequence[str]) -> dict[str, int]:
    """The platform's queues in `vhost` and the messages each holds ({} when the vhost does not exist)."""
    vhosts = run_rabbitmqctl(rabbitmqctl, "-q", "list_vhosts", "--no-table-headers", "name").splitlines()
    if vhost not in (line.strip() for line in vhosts):
        return {}
    listing = run_rabbitmqctl(
        rabbitmqctl, "-q", "list_queues", "-p", vhost, "name", "messages", "--formatter", "json"
    )
    return {
        queue["name"]: int(queue.get("messages") or 0)
        for queue in json.loads(listing or "[]")
        if is_platform_queue(queue["name"], services)
    }


def delete_queues(broker_url: str, names: Iterable[str]) -> None:
    """Delete queues (and the messages in them) over AMQP: one connection, not one CLI start per queue."""
    import kombu  # importable only inside the virtualenv

    with kombu.Connection(broker_url, connect_timeout=5) as connection:
        channel = connection.default_channel
        for name in names:
            channel.queue_delete(name)


def subscriptions(scoped: dict, services: Sequence[str]) -> dict[str, set[str]]:
    """Each service's subscribed event types, as the broker routed them: the `domain.events` bindings
    of its events queue (Celery's delayed-delivery `#.<type>` twins left out)."""
    from shared.messaging.topology import EVENTS_EXCHANGE_NAME, events_queue_name  # the virtualenv's

    queue_of = {events_queue_name(service): service for service in services}
    bound: dict[str, set[str]] = {service: set() for service in services}
    for binding in scoped.get("bindings", []):
        service = queue_of.get(binding["destination"])
        key = binding["routing_key"]
        if binding["source"] == EVENTS_EXCHANGE_NAME and service and "#" not in key:
            bound[service].add(key)
    return bound
