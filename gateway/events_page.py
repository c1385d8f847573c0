"""The events page of /docs/: the AsyncAPI document of `domain.events` as one readable HTML page.

Built from the document itself (contracts/asyncapi.json, the committed snapshot as JSON), so the page says
exactly what the contract says: a section per channel (routing key = event type) with its producer and
consumers (the document's operations) and, per message version, the data's JSON Schema and an example;
then the envelope every message carries. Static HTML, no script, nothing fetched: it reads offline.
Standard library only, like gateway/render.py, which calls it (also inside the gateway's image).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from html import escape
from pathlib import Path
from string import Template

TEMPLATE = Path(__file__).resolve().parents[1] / "nginx" / "events.html.template"
RAW_DOCUMENT_URL = "/docs/asyncapi.json"
ENVELOPE_ANCHOR = "envelope"
CODE_SPAN = re.compile(r"`([^`]+)`")  # the descriptions' `names`, as in Markdown


class PageTemplate(Template):
    delimiter = "%%"  # as nginx/*.template: `$` and `%` alone appear in the page's text


@dataclass(frozen=True)
class Version:
    """One message of a channel: an event type's version, its data schema and an example envelope."""

    number: str
    title: str
    summary: str
    data_schema: dict
    example: object

    def anchor(self, channel: str) -> str:
        return f"{channel}.v{self.number}"


@dataclass(frozen=True)
class Channel:
    name: str
    description: str
    routing_key: str  # "order.created on the domain.events exchange"
    producers: tuple[str, ...]
    consumers: tuple[str, ...]  # "inventory (queue inventory.events)"
    versions: tuple[Version, ...]


# --- reading the document -------------------------------------------------------------------------------


def resolve(document: dict, node):
    """`node`, or what its local `$ref` (#/components/...) points to, followed until it is no reference."""
    while isinstance(node, dict) and str(node.get("$ref", "")).startswith("#/"):
        target = document
        for key in node["$ref"][2:].split("/"):
            target = target[key.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def channels_of(document: dict) -> list[Channel]:
    return [channel_of(document, name, channel) for name, channel in document.get("channels", {}).items()]


def channel_of(document: dict, name: str, channel: dict) -> Channel:
    services = services_by_action(document, name)
    exchange = channel.get("bindings", {}).get("amqp", {}).get("exchange", {}).get("name")
    address = channel.get("address") or name
    versions = [version_of(document, message) for message in channel.get("messages", {}).values()]
    return Channel(
        name=name,
        description=channel.get("description", ""),
        routing_key=f"{address} on the {exchange} exchange" if exchange else address,
        producers=tuple(services["send"]),
        consumers=tuple(services["receive"]),
        versions=tuple(sorted(versions, key=lambda version: int(version.number or 0))),
    )


def services_by_action(document: dict, channel: str) -> dict[str, list[str]]:
    """Who sends and who receives on the channel, as its operations say (a consumer with its queue)."""
    services: dict[str, list[str]] = {"send": [], "receive": []}
    for operation_id, operation in document.get("operations", {}).items():
        if operation.get("channel", {}).get("$ref") != f"#/channels/{channel}":
            continue
        service = operation.get("x-service", operation_id.split(".")[0])
        queue = operation.get("x-queue")
        services.setdefault(operation.get("action", ""), []).append(
            f"{service} (queue {queue})" if queue else service
        )
    return services


def version_of(document: dict, reference: dict) -> Version:
    message = resolve(document, reference)
    payload = resolve(document, message.get("payload", {}))
    # The payload is allOf [the envelope, this version's type, version and data]: the part with `data`.
    parts = payload.get("allOf", [])
    properties = next((part["properties"] for part in parts if "data" in part.get("properties", {})), {})
    examples = message.get("examples") or [{}]
    return Version(
        number=str(properties.get("version", {}).get("const", "")),
        title=message.get("title", message.get("name", "")),
        summary=message.get("summary", ""),
        # Without the usual envelope around it, the whole payload is what there is to show.
        data_schema=resolve(document, properties["data"]) if "data" in properties else payload,
        example=examples[0].get("payload"),
    )


def envelope_schema(document: dict) -> dict:
    return document.get("components", {}).get("schemas", {}).get("Envelope", {})


# --- HTML -----------------------------------------------------------------------------------------------


def render_page(document: dict) -> str:
    """The whole events page; every text from the document is escaped (descriptions come from code)."""
    info = document.get("info", {})
    channels = channels_of(document)
    return PageTemplate(TEMPLATE.read_text()).substitute(
        title=escape(info.get("title", "Events")),
        description=prose(info.get("description", "")),
        asyncapi_version=escape(str(document.get("asyncapi", ""))),
        document_version=escape(str(info.get("version", ""))),
        raw_url=RAW_DOCUMENT_URL,
        contents=table_of_contents(channels),
        channels="\n".join(channel_section(channel) for channel in channels),
        envelope=envelope_section(envelope_schema(document)),
    )


def table_of_contents(channels: list[Channel]) -> str:
    items = []
    for channel in channels:
        versions = ", ".join(
            f'<a href="#{escape(v.anchor(channel.name))}">v{escape(v.number)}</a>' for v in channel.versions
        )
        items.append(f'<li><a href="#{escape(channel.name)}">{escape(channel.name)}</a> ({versions})</li>')
    items.append(f'<li><a href="#{ENVELOPE_ANCHOR}">The envelope</a></li>')
    return "\n".join(f"      {item}" for item in items)


def channel_section(channel: Channel) -> str:
    facts = definition_list(
        {
            "Routing key": channel.routing_key,
            "Producer": ", ".join(channel.producers) or "none declared",
            "Consumers": ", ".join(channel.consumers) or "none declared",
        }
    )
    versions = "\n".join(version_block(channel, version) for version in channel.versions)
    return (
        f'<section class="channel" id="{escape(channel.name)}">\n'
        f"  <h2>{escape(channel.name)}</h2>\n"
        f"  <p>{prose(channel.description)}</p>\n{facts}\n{versions}\n</section>"
    )


def version_block(channel: Channel, version: Version) -> str:
    return (
        f'  <article class="version" id="{escape(version.anchor(channel.name))}">\n'
        f"    <h3>{escape(version.title)}</h3>\n"
        f"    <p>{prose(version.summary)}</p>\n"
        f"    <h4>Data (the envelope's <code>data</code>)</h4>\n{field_table(version.data_schema)}\n"
        f"    <details open><summary>JSON Schema</summary>{json_block(version.data_schema)}</details>\n"
        f"    <h4>Example envelope</h4>\n{json_block(version.example)}\n"
        "  </article>"
    )


def envelope_section(schema: dict) -> str:
    return (
        f'<section class="envelope" id="{ENVELOPE_ANCHOR}">\n'
        f"  <h2>The envelope</h2>\n"
        f"  <p>{prose(schema.get('description', ''))}</p>\n{field_table(schema)}\n"
        f"  <details open><summary>JSON Schema</summary>{json_block(schema)}</details>\n"
        "</section>"
    )


def definition_list(facts: dict[str, str]) -> str:
    rows = "".join(f"<dt>{escape(term)}</dt><dd>{escape(value)}</dd>" for term, value in facts.items())
    return f"  <dl>{rows}</dl>"


def field_table(schema: dict) -> str:
    """A row per top-level property: name, type, whether required, description (nested ones: the schema)."""
    required = set(schema.get("required", []))
    rows = [
        f"<tr><td><code>{escape(name)}</code></td><td>{escape(type_of(field))}</td>"
        f"<td>{'yes' if name in required else 'no'}</td><td>{prose(field.get('description', ''))}</td></tr>"
        for name, field in schema.get("properties", {}).items()
    ]
    head = "<tr><th>Field</th><th>Type</th><th>Required</th><th>Description</th></tr>"
    return f'    <table class="fields"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def type_of(field: dict) -> str:
    """`string (uuid)`, `string or null`, `array of object`, `one of "a", "b"`: a field's type in words."""
    if "const" in field:
        return f"always {json.dumps(field['const'])}"
    if "enum" in field:
        return "one of " + ", ".join(json.dumps(value) for value in field["enum"])
    types = field.get("type", "any")
    words = " or ".join(types) if isinstance(types, list) else str(types)
    if isinstance(field.get("items"), dict):
        words += f" of {type_of(field['items'])}"
    return f"{words} ({field['format']})" if "format" in field else words


def prose(text: str) -> str:
    """A description as HTML: escaped first, then its `names` set as code (the escaping already applied)."""
    return CODE_SPAN.sub(r"<code>\1</code>", escape(text))


def json_block(value) -> str:
    return f"<pre>{escape(json.dumps(value, indent=2, ensure_ascii=False))}</pre>"
