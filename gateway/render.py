"""Render the gateway's nginx configuration (and its /docs/ pages) from the topology (devtools.topology).

Nothing is written per service by hand: every upstream, route and schema link comes from the services'
`gateway_routes` tables and the [gateway] table, so adding a service to topology.toml adds it to the
gateway. Standard library only (the gateway's image runs it before nginx starts).

Templates live in nginx/*.template and use `%%name` placeholders, because `$name` is nginx's own syntax.

Over 500 lines on purpose: one module is what the gateway's image copies and runs before nginx starts
(standard library only), and its sections (fragments, rates, documents) read top to bottom as the
configuration they produce.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from string import Template

from devtools import topology as topology_model
from gateway import events_page

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "nginx"
# The events' AsyncAPI document as JSON (the committed snapshot's copy, devtools/contracts.py): JSON since
# this module reads it with the standard library alone; the gateway's image copies it to the same place.
ASYNCAPI_DOCUMENT = ROOT / "contracts" / "asyncapi.json"
EVENTS_PAGE = "events.html"

SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    # Not no-referrer: under it Chromium sends `Origin: null` with form POSTs, which Django's CSRF origin
    # check refuses, so no admin form could be submitted. same-origin keeps the origin for our own forms
    # and sends nothing to other sites.
    ("Referrer-Policy", "same-origin"),
)
# Errors nginx itself produces, in the contract's shape (the services' own errors pass through as they are).
NGINX_ERRORS = {
    400: ("malformed_request", "The request is malformed."),
    401: ("not_authenticated", "A valid access token is required."),
    403: ("permission_denied", "You are not allowed to do this."),
    404: ("not_found", "Not found."),
    405: ("method_not_allowed", "Method not allowed."),
    408: ("request_timeout", "The request did not arrive in time."),
    411: ("length_required", "A Content-Length header is required."),
    413: ("payload_too_large", "The request body is too large."),
    414: ("uri_too_long", "The request URI is too long."),
    429: ("rate_limited", "Too many requests: slow down and retry later."),
    431: ("request_header_too_large", "The request headers are too large."),
    500: ("server_error", "Internal server error."),
    501: ("not_implemented", "The request uses a feature the gateway does not implement."),
    502: ("bad_gateway", "The service is unavailable."),
    503: ("service_unavailable", "The service is unavailable."),
    504: ("gateway_timeout", "The service did not answer in time."),
    505: ("http_version_not_supported", "The HTTP version is not supported."),
}
GATEWAY_METHODS = "GET, HEAD, OPTIONS, POST, PUT, PATCH, DELETE"
# nginx's own non-standard statuses, answered with the standard one they stand for. 494: a request
# header (or cookie) larger than large_client_header_buffers, which nginx otherwise sends as an HTML 400.
NGINX_ERROR_ALIASES = {494: 431}
# Passive health checks: an instance that fails once (refused, reset, timed out, 502/503) is left out
# for this long; a single-server upstream ignores both (nginx never marks its only server down).
UPSTREAM_MAX_FAILS = 1
UPSTREAM_FAIL_TIMEOUT = "5s"
# How long an idle connection to a service stays open for reuse. Shorter than the web servers' own
# keep-alive (shared.observability.gunicorn_conf.KEEPALIVE_SECONDS) and than this nginx's (30 s, for its
# limiter hop), so that the gateway always closes an idle connection first: when gunicorn closed one
# just as nginx reused it, nginx got a reset and answered 502 to a POST it may not retry.
UPSTREAM_KEEPALIVE_SECONDS = 20
RATE_DEFAULTS = {  # variable: (default rate, burst variable, default burst)
    "GATEWAY_RATE_PER_IP": ("50r/s", "GATEWAY_RATE_PER_IP_BURST", "100"),
    "GATEWAY_LOGIN_RATE": ("5r/m", "GATEWAY_LOGIN_BURST", "5"),
    "GATEWAY_ORDER_RATE": ("10r/s", "GATEWAY_ORDER_BURST", "20"),
    "GATEWAY_ADMIN_LOGIN_RATE": ("10r/m", "GATEWAY_ADMIN_LOGIN_BURST", "10"),
    # Token refresh has a budget of its own: a signed-in client refreshing is not a password guesser.
    "GATEWAY_REFRESH_RATE": ("30r/m", "GATEWAY_REFRESH_BURST", "20"),
}
# Swagger UI's files inside the installed drf-spectacular-sidecar package (copied next to /docs/).
SWAGGER_UI_FILES = (
    "swagger-ui-bundle.js",
    "swagger-ui-standalone-preset.js",
    "swagger-ui.css",
    "favicon-32x32.png",
)
SWAGGER_UI_LOCATOR = (
    "import pathlib, drf_spectacular_sidecar as s; "
    "print(pathlib.Path(s.__file__).parent / 'static' / 'drf_spectacular_sidecar' / 'swagger-ui-dist')"
)


class NginxTemplate(Template):
    delimiter = "%%"


@dataclass(frozen=True)
class Route:
    path: str
    service: str
    access: str


@dataclass(frozen=True)
class Gateway:
    """What the renderer needs about one instance, ports already shifted by the instance's offset."""

    instance: str
    var_dir: Path
    listen_port: int
    verifier_port: int
    flower_port: int
    service_ports: dict[str, int]
    routes: tuple[Route, ...]
    login_paths: tuple[str, ...]
    per_user_paths: tuple[str, ...]
    admin_login_path: str = ""
    refresh_paths: tuple[str, ...] = ()
    # Every web instance's port per service (default: the service's port alone), and the internal
    # listener per service that peers call (<NAME>_URL) so that they too reach every instance.
    instance_ports: dict[str, tuple[int, ...]] = field(default_factory=dict)
    balancer_ports: dict[str, int] = field(default_factory=dict)
    # In a container (compose, Kubernetes) nginx listens on every address, finds each upstream by its
    # DNS name (the compose service / Kubernetes Service: `catalog`, `gateway-verifier`, `flower`) and
    # logs to stdout/stderr for the container runtime.
    container: bool = False

    @property
    def nginx_dir(self) -> Path:
        return self.var_dir / "nginx"

    @property
    def listen_address(self) -> str:
        return str(self.listen_port) if self.container else f"127.0.0.1:{self.listen_port}"

    @property
    def access_log(self) -> str:
        return "/dev/stdout" if self.container else str(self.var_dir / "log" / "nginx-access.log")

    @property
    def error_log(self) -> str:
        return "/dev/stderr" if self.container else str(self.nginx_dir / "error.log")

    def host(self, name: str) -> str:
        """Where upstream `name` (a service, `gateway-verifier` or `flower`) is found."""
        return name.replace("_", "-") if self.container else "127.0.0.1"

    @property
    def conf_file(self) -> Path:
        return self.nginx_dir / "nginx.conf"

    @property
    def limiter_socket(self) -> Path:
        return self.nginx_dir / "limiter.sock"


def gateway_of(
    topology: topology_model.Topology,
    instance: str,
    var_dir: Path,
    port_offset: int,
    *,
    instance_ports: dict[str, tuple[int, ...]] | None = None,
    balancer_ports: dict[str, int] | None = None,
) -> Gateway | None:
    """The instance's Gateway (ports shifted by `port_offset`), or None when the topology has no gateway.

    manage_all.py passes the (shifted) ports of every web instance and of the internal balancers, as
    topology.toml and `up --scale` decide them; without them each service has one instance and no balancer.
    """
    table = topology.gateway
    if table is None:
        return None
    routes = tuple(
        Route(route.path, service.name, route.access)
        for service in topology.services
        for route in service.routes
    )
    service_ports = {service.name: service.port + port_offset for service in topology.services}
    return Gateway(
        instance=instance,
        var_dir=var_dir,
        listen_port=table.port + port_offset,
        verifier_port=table.verifier_port + port_offset,
        flower_port=topology.flower_port + port_offset,
        service_ports=service_ports,
        routes=routes,
        login_paths=table.login_paths,
        per_user_paths=table.per_user_paths,
        admin_login_path=table.admin_login_path,
        refresh_paths=table.refresh_paths,
        instance_ports=instance_ports or {name: (port,) for name, port in service_ports.items()},
        balancer_ports=balancer_ports or {},
    )


def verifier_command(bind: str, gunicorn: str = "gunicorn") -> list[str]:
    """How the token verifier runs, locally (manage_all.py) and in containers (compose, Kubernetes)."""
    return [
        gunicorn, "gateway.verifier:application", "--bind", bind, "--workers", "1", "--threads", "16",
        "--worker-class", "gthread", "--timeout", "30", "--no-control-socket",
    ]  # fmt: skip


def load_container_gateway(out_dir: Path, topology: topology_model.Topology | None = None) -> Gateway:
    """The gateway as compose and Kubernetes run it: topology ports unshifted, upstreams by DNS name,
    one address per service (the platform's DNS or Service spreads requests over the replicas)."""
    gateway = gateway_of(topology or topology_model.load(), "container", out_dir, 0)
    if gateway is None:
        raise ValueError("topology.toml has no [gateway] table")
    return replace(gateway, container=True)


def template(name: str) -> NginxTemplate:
    return NginxTemplate((TEMPLATES / name).read_text())


# --- fragments -----------------------------------------------------------------------------------------


def header_lines(extra: tuple[tuple[str, str], ...] = (), indent: int = 8) -> str:
    """add_header lines; repeated in any location that adds its own, since nginx inherits all or none."""
    pad = " " * indent
    return "\n".join(f"{pad}add_header {name} {value} always;" for name, value in (*SECURITY_HEADERS, *extra))


def upstreams(gateway: Gateway) -> str:
    """A keepalive upstream per service (all its web instances), the verifier, Flower and the limiter hop."""
    health = f"max_fails={UPSTREAM_MAX_FAILS} fail_timeout={UPSTREAM_FAIL_TIMEOUT}"
    targets = {
        f"svc_{name}": [
            f"{gateway.host(name)}:{port} {health}" for port in gateway.instance_ports.get(name, (port,))
        ]
        for name, port in gateway.service_ports.items()
    }
    targets["gateway_verifier"] = [f"{gateway.host('gateway-verifier')}:{gateway.verifier_port}"]
    targets["flower"] = [f"{gateway.host('flower')}:{gateway.flower_port}"]
    targets["per_user_limiter"] = [f"unix:{gateway.limiter_socket}"]
    upstream = template("upstream.template")
    return "\n".join(
        upstream.substitute(
            name=name,
            servers=server_lines(servers),
            keepalive=16,
            keepalive_timeout=f"{UPSTREAM_KEEPALIVE_SECONDS}s",
        )
        for name, servers in targets.items()
    )


def server_lines(servers: list[str]) -> str:
    return "\n".join(f"        server {server};" for server in servers)


def balancers(gateway: Gateway) -> str:
    """An internal listener per service for east-west calls: every instance, idempotent retries only."""
    balancer = template("balancer.template")
    return "\n".join(
        balancer.substitute(service=name, port=port, log_dir=gateway.var_dir / "log")
        for name, port in sorted(gateway.balancer_ports.items())
    )


def error_headers(status: int, edge: bool) -> str:
    """Headers of nginx's own error answers; the limiter hop's pass through the edge, which adds the rest."""
    extra = [("Retry-After", "$retry_after")] if status == 429 else []
    if not edge:
        return "\n".join(f"            add_header {name} {value} always;" for name, value in extra)
    extra.append(("X-Request-ID", "$edge_request_id"))
    if status == 401:
        extra.append(("WWW-Authenticate", "Bearer"))
    if status == 405:
        # nginx refuses TRACE itself, before any route: it names the methods it passes on to a service
        # (RFC 9110 requires an Allow header with a 405; a service's own 405 names its resource's).
        extra.append(("Allow", f'"{GATEWAY_METHODS}"'))
    return header_lines(tuple(extra), 12)


def error_pages(statuses, edge: bool = True) -> str:
    """error_page directives and the JSON locations they point at."""
    error_location = template("error_location.template")
    # `=`: the named location's own status is the answer's (a 403 of the verifier's fail-closed refusal
    # leaves as the 503 that /_errors/403 returns); without it nginx keeps the original status. Internal
    # URIs, not named locations: nginx cannot redirect a request whose line it could not read (a 400, a
    # 414 for a line longer than its buffers) to a named location, and answers its own HTML 500 instead.
    lines = [f"        error_page {status} = /_errors/{status};" for status in statuses]
    lines += [
        f"        error_page {alias} ={status} /_errors/{status};"
        for alias, status in NGINX_ERROR_ALIASES.items()
        if status in statuses
    ]
    for status in statuses:
        code, message = NGINX_ERRORS[status]
        headers = error_headers(status, edge)
        before = revocation_unavailable() if edge and status == 403 else ""
        lines.append(
            error_location.substitute(
                status=status, code=code, message=message, headers=headers, before_return=before
            )
        )
    return "\n".join(lines)


def revocation_unavailable() -> str:
    """In /_errors/403: the verifier's fail-closed refusal (X-Auth-Unavailable) is really a 503. Headers
    set inside `if` replace the location's, so all of them are repeated there."""
    code, message = NGINX_ERRORS[503]
    headers = header_lines((("X-Request-ID", "$edge_request_id"), ("Retry-After", "5")), 16)
    body = json.dumps({"error": {"code": code, "message": message, "fields": {}}})
    pad = " " * 12
    return f"{pad}if ($auth_unavailable) {{\n{headers}\n{pad}    return 503 '{body}';\n{pad}}}"


def auth_locations() -> str:
    """Internal auth_request targets, one per verifier mode. Users' answers are cached 10 s, keyed by all
    the mode looks at (the services check every token again); staff answers are never cached, since Flower
    trusts the gateway alone: a demoted member of staff is refused on the very next request."""
    keys = {
        "strict": "strict|$http_authorization",
        "read": "read|$request_method|$http_authorization",
        "staff": None,
    }
    auth_location = template("auth_location.template")
    return "\n".join(auth_location.substitute(mode=mode, cache=auth_cache(key)) for mode, key in keys.items())


def auth_cache(key: str | None) -> str:
    if key is None:
        return "            proxy_cache off;"
    return "\n".join(
        f"            {line}"
        for line in (
            "proxy_cache auth_cache;",
            f'proxy_cache_key "{key}";',
            "proxy_cache_methods GET HEAD POST;",
            "proxy_cache_valid 200 204 10s;",
            "proxy_ignore_headers Cache-Control Expires Set-Cookie;",
        )
    )


def location(match: str, comment: str, directives: list[str]) -> str:
    body = "\n".join(f"            {directive}" for directive in directives)
    return template("location.template").substitute(match=match, comment=comment, directives=body)


def access_directives(access: str) -> list[str]:
    if access == "protected":
        return ["auth_request /_auth/strict;"]
    if access == "read":
        return ["auth_request /_auth/read;"]
    return []


def api_routes(gateway: Gateway, rates: dict) -> list[str]:
    """A location per route; login paths get the brute-force zone, per-user paths the limiter hop."""
    per_ip = f"limit_req zone=per_ip burst={rates['GATEWAY_RATE_PER_IP_BURST']} nodelay;"
    blocks = []
    for route in sorted(gateway.routes, key=lambda r: r.path):
        directives = [*access_directives(route.access), f"proxy_pass http://svc_{route.service};"]
        if route.path in gateway.login_paths:
            # limit_req set here replaces the server's, so the per-address zone is repeated.
            directives += [per_ip, f"limit_req zone=login burst={rates['GATEWAY_LOGIN_BURST']} nodelay;"]
        if route.path in gateway.refresh_paths:
            directives += [per_ip, f"limit_req zone=refresh burst={rates['GATEWAY_REFRESH_BURST']} nodelay;"]
        blocks.append(location(route.path, f"{route.service}, {route.access}", directives))
    for path in gateway.per_user_paths:
        owner = max((r for r in gateway.routes if path.startswith(r.path)), key=lambda r: len(r.path))
        directives = ["auth_request /_auth/strict;", "proxy_pass http://per_user_limiter;"]
        if owner.service != "orders":
            raise ValueError("per_user_paths: the limiter hop forwards to orders only")
        blocks.append(location(f"= {path}", "per-user rate limit (via the limiter hop)", directives))
    return blocks


def extra_routes(gateway: Gateway, env: dict) -> list[str]:
    """Each service's OpenAPI document at /api/schema/<service>/ and staff-only Flower at /flower/."""
    blocks = [
        location(
            f"= /api/schema/{name}/",
            f"{name} OpenAPI document",
            [f"proxy_pass http://svc_{name}/api/schema/;"],
        )
        for name in gateway.service_ports
    ]
    # Flower asks for its own password (basic auth) so that its port opens to nobody else; the gateway,
    # once the verifier has found a member of staff, sends that password in place of the visitor's header.
    flower = [
        "auth_request /_auth/staff;",
        f'proxy_set_header Authorization "{flower_authorization(env)}";',  # never the visitor's
        "proxy_pass http://flower;",
    ]
    blocks.append(
        location("/flower/", "Flower: staff only (staff token or the admin sign-on cookie)", flower)
    )
    return blocks


def flower_authorization(env: dict) -> str:
    """The Authorization header the gateway sends Flower: FLOWER_BASIC_AUTH ("user:password")."""
    credentials = env.get("FLOWER_BASIC_AUTH", "")
    if ":" not in credentials or '"' in credentials:
        raise ValueError("FLOWER_BASIC_AUTH must be set to user:password (the password Flower asks for)")
    return "Basic " + base64.b64encode(credentials.encode()).decode()


def admin_routes(gateway: Gateway, rates: dict) -> list[str]:
    """Every service's Django admin at /admin/<service>/ and its assets at /static/<service>/.

    The services serve both under those very paths (shared.settings), so nothing is rewritten on the
    way; the single sign-on login page gets its own per-address limit on POST (password guessing).
    """
    blocks = []
    if gateway.admin_login_path:
        owner = gateway.admin_login_path.strip("/").split("/")[1]
        if owner not in gateway.service_ports:
            raise ValueError(f"admin_login_path {gateway.admin_login_path}: no service {owner!r}")
    for name in gateway.service_ports:
        blocks.append(location(f"/admin/{name}/", f"{name} admin", [f"proxy_pass http://svc_{name};"]))
        blocks.append(
            location(f"/static/{name}/", f"{name} admin assets", [f"proxy_pass http://svc_{name};"])
        )
        # Every admin's login form is a password form (identity's is the sign-on; the others' take a
        # local account with ?local=1): each one's POSTs are limited per address.
        directives = [
            f"limit_req zone=per_ip burst={rates['GATEWAY_RATE_PER_IP_BURST']} nodelay;",
            f"limit_req zone=admin_login burst={rates['GATEWAY_ADMIN_LOGIN_BURST']} nodelay;",
            f"proxy_pass http://svc_{name};",
        ]
        blocks.append(
            location(f"= /admin/{name}/login/", f"{name} admin login (a password form)", directives)
        )
    return blocks


# --- rates ---------------------------------------------------------------------------------------------


def rates_from(env: dict) -> dict:
    """Every GATEWAY_* rate and burst: the environment's, else the defaults."""
    rates = {}
    for variable, (rate, burst_variable, burst) in RATE_DEFAULTS.items():
        rates[variable] = env.get(variable, rate)
        rates[burst_variable] = env.get(burst_variable, burst)
    return rates


def retry_after_map(gateway: Gateway, rates: dict) -> str:
    """`map $uri $retry_after` entries: the paths under a slower zone than the per-address one."""
    waits = {path: retry_after(rates["GATEWAY_LOGIN_RATE"]) for path in gateway.login_paths}
    waits |= {path: retry_after(rates["GATEWAY_REFRESH_RATE"]) for path in gateway.refresh_paths}
    admin_wait = retry_after(rates["GATEWAY_ADMIN_LOGIN_RATE"])
    waits |= {f"/admin/{name}/login/": admin_wait for name in gateway.service_ports}
    return "\n        ".join(f'"{path}" {seconds};' for path, seconds in waits.items())


def retry_after(rate: str) -> int:
    """Seconds until a rate like 5r/m lets one more request through (nginx's own unit arithmetic)."""
    count, _, unit = rate.partition("r/")
    return max(1, math.ceil((60 if unit == "m" else 1) / float(count)))


# --- documents -----------------------------------------------------------------------------------------


def render_conf(gateway: Gateway, env: dict) -> str:
    rates = rates_from(env)

    return template("nginx.conf.template").substitute(
        instance=gateway.instance,
        nginx_dir=gateway.nginx_dir,
        error_log=gateway.error_log,
        access_log=gateway.access_log,
        listen_address=gateway.listen_address,
        limiter_socket=gateway.limiter_socket,
        max_body_size=env.get("GATEWAY_MAX_BODY_SIZE", "1m"),
        rate_per_ip=rates["GATEWAY_RATE_PER_IP"],
        rate_per_ip_burst=rates["GATEWAY_RATE_PER_IP_BURST"],
        login_rate=rates["GATEWAY_LOGIN_RATE"],
        admin_login_rate=rates["GATEWAY_ADMIN_LOGIN_RATE"],
        refresh_rate=rates["GATEWAY_REFRESH_RATE"],
        order_rate=rates["GATEWAY_ORDER_RATE"],
        order_rate_burst=rates["GATEWAY_ORDER_BURST"],
        retry_after_map=retry_after_map(gateway, rates),
        retry_after_default=max(
            retry_after(rates["GATEWAY_RATE_PER_IP"]), retry_after(rates["GATEWAY_ORDER_RATE"])
        ),
        upstreams=upstreams(gateway),
        balancers=balancers(gateway),
        security_headers=header_lines(),
        hidden_headers="\n".join(f"        proxy_hide_header {name};" for name, _ in SECURITY_HEADERS),
        error_pages=error_pages(sorted(NGINX_ERRORS)),
        limiter_error_pages=error_pages([429], edge=False),
        auth_locations=auth_locations(),
        routes="\n".join(
            [*api_routes(gateway, rates), *extra_routes(gateway, env), *admin_routes(gateway, rates)]
        ),
    )


def render_docs(gateway: Gateway) -> str:
    schemas = [{"name": name, "url": f"/api/schema/{name}/"} for name in gateway.service_ports]
    links = "\n".join(f'    <li><a href="{s["url"]}">{s["name"]}</a></li>' for s in schemas)
    return template("docs.html.template").substitute(
        schema_links=links,
        schema_urls_json=json.dumps(schemas),
        events_url=f"/docs/{EVENTS_PAGE}",
        asyncapi_url=events_page.RAW_DOCUMENT_URL,
    )


def write_events_docs(docs_dir: Path, source: Path | None = None) -> None:
    """The events' AsyncAPI document at /docs/asyncapi.json, as committed (for tools), and the page that
    reads it at /docs/events.html (for people)."""
    source = source or ASYNCAPI_DOCUMENT
    if not source.is_file():
        raise FileNotFoundError(
            f"{source} is missing: the events' AsyncAPI document as JSON, which `python3 manage_all.py "
            "contracts update` writes beside contracts/asyncapi.yaml (docs/contracts.md)"
        )
    shutil.copyfile(source, docs_dir / Path(events_page.RAW_DOCUMENT_URL).name)
    (docs_dir / EVENTS_PAGE).write_text(events_page.render_page(json.loads(source.read_text())))


def swagger_ui_dir(python: Path | None = None) -> Path:
    """Where the installed drf-spectacular-sidecar keeps Swagger UI (asked of the repository's virtualenv,
    since this module runs on the system's Python before or outside it; in an image, of the Python
    running this module, whose environment has the requirements)."""
    venv_python = ROOT / ".venv" / "bin" / "python"
    python = python or (venv_python if venv_python.exists() else Path(sys.executable))
    answer = subprocess.run([str(python), "-c", SWAGGER_UI_LOCATOR], capture_output=True, text=True)
    folder = Path(answer.stdout.strip()) if answer.returncode == 0 else None
    if folder is None or not all((folder / name).is_file() for name in SWAGGER_UI_FILES):
        raise FileNotFoundError(
            f"Swagger UI assets not found with {python} (drf-spectacular-sidecar, requirements/base.txt): "
            f"install the requirements (`python3 manage_all.py up` does) and render again. {answer.stderr}"
        )
    return folder


def copy_swagger_ui(target: Path, source: Path | None = None) -> None:
    """Swagger UI next to /docs/index.html, so the page works offline and from one origin."""
    source = source or swagger_ui_dir()
    target.mkdir(parents=True, exist_ok=True)
    for name in SWAGGER_UI_FILES:
        shutil.copyfile(source / name, target / name)


def write(
    gateway: Gateway, env: dict | None = None, swagger_ui: Path | None = None, asyncapi: Path | None = None
) -> Path:
    """Render nginx.conf and docs/index.html (with Swagger UI's files, the events' AsyncAPI document and its
    page) under var/<instance>/nginx/; returns the conf's path. `swagger_ui`: the assets' folder, found in
    .venv when not given; `asyncapi`: the document as JSON, contracts/asyncapi.json when not given."""
    env = dict(os.environ if env is None else env)
    for sub in ("tmp", "cache", "docs"):
        (gateway.nginx_dir / sub).mkdir(parents=True, exist_ok=True)
    (gateway.var_dir / "log").mkdir(parents=True, exist_ok=True)
    copy_swagger_ui(gateway.nginx_dir / "docs" / "swagger-ui", swagger_ui)
    (gateway.nginx_dir / "docs" / "index.html").write_text(render_docs(gateway))
    write_events_docs(gateway.nginx_dir / "docs", asyncapi)
    gateway.conf_file.touch(mode=0o600)  # it holds Flower's password
    gateway.conf_file.chmod(0o600)
    gateway.conf_file.write_text(render_conf(gateway, env))
    return gateway.conf_file


def main(argv: list[str] | None = None) -> int:
    """`python -m gateway.render --container DIR`: the container's nginx.conf (and /docs/) under DIR/nginx,
    with the rate limits of this environment; the gateway image runs it before starting nginx."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--container", metavar="DIR", type=Path, required=True)
    parser.add_argument("--topology", type=Path, default=topology_model.TOPOLOGY_FILE)
    args = parser.parse_args(argv)
    print(write(load_container_gateway(args.container, topology_model.load(args.topology))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
