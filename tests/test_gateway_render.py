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
ERROR_LOCATION = re.compile(
    r"location = /_errors/(\d+) \{\n            internal;\n(.*?)\n        \}", re.DOTALL
)
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
        assert f"error_page {status} = /_errors/{status};" in server
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
    assert "error_page 494 =431 /_errors/431;" in edge_server(conf)


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


# --- /docs/: the events' AsyncAPI document beside Swagger UI ---------------------------------------------


@pytest.fixture(scope="module")
def docs(tmp_path_factory) -> Path:
    """/docs/ as the renderer writes it (Swagger UI's files, the events' document and page included)."""
    var_dir = tmp_path_factory.mktemp("docs-render")
    gateway = render.gateway_of(topology.load(), "render-test", var_dir, 0)
    render.write(gateway, {"FLOWER_BASIC_AUTH": "ops:render-test"})
    return gateway.nginx_dir / "docs"


@pytest.fixture(scope="module")
def events_document() -> dict:
    from shared.contracts import asyncapi  # the virtualenv's shared package, not the stdlib-only renderer

    return asyncapi.document()


def test_the_raw_asyncapi_document_served_is_the_codes(docs, events_document):
    served = json.loads((docs / "asyncapi.json").read_text())
    assert served == events_document, "contracts/asyncapi.json is stale: `manage_all.py contracts update`"


def test_the_docs_index_links_the_events_page_and_the_raw_document(docs):
    index = (docs / "index.html").read_text()
    assert f'href="/docs/{render.EVENTS_PAGE}">Events (AsyncAPI)</a>' in index
    assert 'href="/docs/asyncapi.json"' in index
    assert (docs / render.EVENTS_PAGE).is_file()


def test_the_events_page_shows_every_event_type_and_version_with_its_schema(docs, events_document):
    page = (docs / render.EVENTS_PAGE).read_text()
    for event_type, channel in events_document["channels"].items():
        assert f'<section class="channel" id="{event_type}">' in page and f'href="#{event_type}"' in page
        for message in channel["messages"]:  # order.created.v1, order.created.v2, ...
            assert f'<article class="version" id="{message}">' in page and f'href="#{message}"' in page
    # order.created v2's data: its fields in the table, its JSON Schema (escaped) and the envelope's.
    v2 = page.split('id="order.created.v2"')[1].split("</article>")[0]
    assert "<td><code>order_id</code></td>" in v2 and "<td><code>total</code></td>" in v2
    assert "&quot;currency&quot;: {" in v2 and "&quot;required&quot;: [" in v2
    envelope = page.split('<section class="envelope" id="envelope">')[1]
    assert "<td><code>correlation_id</code></td>" in envelope
    assert 'href="/docs/asyncapi.json"' in page and "<script" not in page


def test_the_events_page_names_each_channels_producer_and_consumers(docs):
    created = (docs / render.EVENTS_PAGE).read_text().split('id="order.created"')[1].split("</section>")[0]
    assert "<dt>Producer</dt><dd>orders</dd>" in created
    assert "<dt>Consumers</dt><dd>inventory (queue inventory.events)</dd>" in created


def test_the_events_page_escapes_what_the_document_says(tmp_path):
    """Descriptions come from code: markup in them is shown as text, never interpreted."""
    hostile = "<script>alert(1)</script> & `code`"
    document = {
        "info": {"title": hostile, "description": hostile},
        "channels": {
            "thing.happened": {
                "description": hostile,
                "messages": {"thing.happened.v1": {"$ref": "#/components/messages/thing.happened.v1"}},
            }
        },
        "operations": {},
        "components": {
            "messages": {
                "thing.happened.v1": {
                    "title": hostile,
                    "summary": hostile,
                    "payload": {"properties": {"x<y": {"type": "string", "description": hostile}}},
                    "examples": [{"payload": {"note": hostile}}],
                }
            },
            "schemas": {"Envelope": {"description": hostile}},
        },
    }
    source = tmp_path / "hostile.json"
    source.write_text(json.dumps(document))
    render.write_events_docs(tmp_path, source)

    page = (tmp_path / render.EVENTS_PAGE).read_text()
    assert "<script>" not in page and "x<y" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; <code>code</code>" in page
