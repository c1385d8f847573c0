"""Offline checks of the nginx configuration gateway/render.py writes (no platform, no running nginx):
whatever nginx refuses by itself answers in the contract's error shape, like the services do."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from devtools import topology
from gateway import render
from shared.observability.gunicorn_conf import settings_for

# What a client can make nginx itself refuse, before any service sees the request.
EDGE_REFUSALS = {400, 408, 413, 414, 431}
ERROR_LOCATION = re.compile(r"location @error_(\d+) \{\n(.*?)\n        \}", re.DOTALL)
RETURN = re.compile(r"return (\d+) '(.*?)';")


@pytest.fixture
def conf(tmp_path) -> str:
    gateway = render.gateway_of(topology.load(), "render-test", tmp_path, 0)
    return render.render_conf(gateway, {"FLOWER_BASIC_AUTH": "ops:render-test"})


def edge_server(conf: str) -> str:
    """The public server block (the first one); the limiter hop and the balancers follow it."""
    return conf.split("    server {")[1]


def test_every_error_nginx_produces_itself_is_json_in_the_error_shape(conf):
    assert set(render.NGINX_ERRORS) >= EDGE_REFUSALS
    server = edge_server(conf)
    locations = ERROR_LOCATION.findall(server)
    assert {int(status) for status, _ in locations} == set(render.NGINX_ERRORS)
    for status, block in locations:
        assert f"error_page {status} = @error_{status};" in server
        *_conditional, (returned, body) = RETURN.findall(block)
        assert returned == status
        error = json.loads(body)["error"]
        assert (error["code"], error["message"]) == render.NGINX_ERRORS[int(status)]
        for _status, any_body in RETURN.findall(block):
            assert set(json.loads(any_body)["error"]) == {"code", "message", "fields"}


def test_the_gateway_closes_idle_upstream_connections_before_the_web_servers_do(conf):
    """Otherwise a web server closes one just as nginx reuses it: a reset, and a 502 for a POST."""
    upstreams = re.findall(r"^    upstream \w+ \{(.*?)\}", conf, re.MULTILINE | re.DOTALL)
    timeouts = [re.findall(r"keepalive_timeout (\d+)s;", block) for block in upstreams]
    assert len(upstreams) >= 6 and timeouts == [[str(render.UPSTREAM_KEEPALIVE_SECONDS)]] * len(upstreams)
    assert settings_for("orders", tracing=False)["keepalive"] > render.UPSTREAM_KEEPALIVE_SECONDS
    server_side = re.search(r"^    keepalive_timeout (\d+)s;", conf, re.MULTILINE)  # the limiter hop's server
    assert int(server_side[1]) > render.UPSTREAM_KEEPALIVE_SECONDS


def test_a_request_header_too_large_is_a_json_431_not_nginxs_html_400(conf):
    """nginx flags it as its own 494 and, without an error_page for 494, sends an HTML 400."""
    assert "error_page 494 =431 @error_431;" in edge_server(conf)


def test_the_configuration_with_every_error_page_passes_nginx_t(conf, tmp_path):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.fail("nginx is missing: `python3 manage_all.py up` or .ci/run installs it")
    nginx_dir = tmp_path / "nginx"
    for directory in ("tmp", "cache", "docs"):
        (nginx_dir / directory).mkdir(parents=True, exist_ok=True)
    (tmp_path / "log").mkdir(exist_ok=True)
    conf_file = nginx_dir / "nginx.conf"
    conf_file.write_text(conf)
    check = subprocess.run(
        [nginx, "-t", "-c", str(conf_file), "-p", str(nginx_dir), "-e", str(tmp_path / "error.log")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr
