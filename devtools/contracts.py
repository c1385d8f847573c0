"""The committed contract snapshots (contracts/, docs/contracts.md) and the check that the code still honours
them: each service's OpenAPI document per API version, and the AsyncAPI document of the events.

The documents are generated offline from the code (drf-spectacular's `spectacular` command in each service's
environment; shared.contracts.asyncapi.document() for the events) and compared with their snapshots by
openapi-diff (devtools/openapi_diff.py). Event payloads are compared by the same tool, each wrapped as the
response body of a synthetic operation: what a publisher emits is what its consumers read, as a response is.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

from devtools import openapi_diff
from devtools.console import PlatformError, display
from devtools.environment import caller_env, service_env
from devtools.instance import Platform
from devtools.paths import ROOT, SHARED_DIR, VENV_PYTHON
from devtools.topology import Service

CONTRACTS_DIR = ROOT / "contracts"
# contracts/asyncapi.yaml; the APIs' snapshots are contracts/openapi/<service>/<version>.yaml
ASYNCAPI_SNAPSHOT = "asyncapi.yaml"
# The same document as JSON, for readers without a YAML parser: the gateway's renderer (standard library
# only, also inside its image) serves it and builds the events page of /docs/ from it. Written from the
# YAML snapshot, and checked against it, so that it is exactly as current as the snapshot.
ASYNCAPI_JSON_COPY = "asyncapi.json"
HEADER = (
    "# Generated from the code by `python3 manage_all.py contracts update`: do not edit (docs/contracts.md)\n"
)
VERSION_SEGMENT = re.compile(r"v(\d+)")
# A path without a version segment (/.well-known/jwks.json) has only ever had one version: the first.
FIRST_VERSION = "v1"
GENERATORS = 2  # documents generated at once (each a Django start-up: one per core on a CI runner)
CHANGES_SHOWN = 15  # changed locations listed per snapshot; the rest are counted
# JSON Schema keywords that only annotate (OpenAPI 3.0 refuses them; dropping them changes no validation).
JSON_SCHEMA_ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "examples"})
EMPTY_OPENAPI = {"openapi": "3.0.3", "info": {"title": "nothing", "version": "0"}, "paths": {}}
ASYNCAPI_MODULE = "shared.contracts.asyncapi"  # `python -m` prints the document as JSON


# --- generating the documents from the code -------------------------------------------------------------


def current_contracts(platform: Platform) -> dict[str, dict]:
    """Every contract as the code has it now, by snapshot name (openapi/catalog/v1.yaml, asyncapi.yaml)."""
    with ThreadPoolExecutor(max_workers=GENERATORS) as pool:
        generated = pool.map(lambda service: generate_openapi(platform, service), platform.topology.services)
        documents = dict(zip(platform.topology.service_names, generated, strict=True))
    contracts = {
        f"openapi/{service}/{version}.yaml": canonical(part)
        for service, document in documents.items()
        for version, part in split_by_version(document).items()
    }
    contracts[ASYNCAPI_SNAPSHOT] = canonical(generate_asyncapi())
    return contracts


def generate_openapi(platform: Platform, service: Service) -> dict:
    """The service's whole OpenAPI document, as drf-spectacular generates it from the code (no server)."""
    env = service_env(platform, service.name, platform.instance.port(service.port)) | {"LOG_LEVEL": "WARNING"}
    with tempfile.TemporaryDirectory(prefix=f"openapi-{service.name}-") as directory:
        target = Path(directory) / "openapi.json"
        arguments = ["spectacular", "--format", "openapi-json", "--file", str(target)]
        result = subprocess.run(
            [str(VENV_PYTHON), "manage.py", *arguments],
            cwd=service.directory,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise PlatformError(f"{service.name}: manage.py spectacular failed:\n{result.stderr.strip()}")
        return json.loads(target.read_text())


def generate_asyncapi() -> dict:
    """shared.contracts.asyncapi.document(), from the events' declarations in code."""
    result = subprocess.run(
        [str(VENV_PYTHON), "-m", ASYNCAPI_MODULE],
        cwd=SHARED_DIR,  # not the repository root, whose shared/ folder would shadow the package
        env=caller_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise PlatformError(f"{ASYNCAPI_MODULE}.document() failed:\n{result.stderr.strip()}")
    return json.loads(result.stdout)


def canonical(document: dict) -> dict:
    """The document as its snapshot file reads back, so that equal means "nothing to update"."""
    return yaml.safe_load(render(document))


def render(document: dict) -> str:
    """A snapshot file: sorted keys and no line folding, so that regenerating it changes no byte."""
    return HEADER + yaml.safe_dump(document, sort_keys=True, allow_unicode=True, width=10_000)


# --- one OpenAPI document per API version ----------------------------------------------------------------


def path_version(path: str) -> str:
    """The API version a path belongs to: its first `v<N>` segment (/api/v2/products/ is v2)."""
    return next((segment for segment in path.split("/") if VERSION_SEGMENT.fullmatch(segment)), FIRST_VERSION)


def split_by_version(document: dict) -> dict[str, dict]:
    """The document cut into one per API version, each with its paths and only the components they use.

    The services version their APIs in the URL (/api/v1/, /api/v2/) without DRF versioning, so
    drf-spectacular's --api-version selects nothing: the versions are told apart by their paths.
    """
    versions = sorted({path_version(path) for path in document["paths"]}, key=lambda v: int(v[1:]))
    return {version: version_document(document, version) for version in versions}


def version_document(document: dict, version: str) -> dict:
    paths = {path: item for path, item in document["paths"].items() if path_version(path) == version}
    components = document.get("components", {})
    used = referenced_components(components, paths)
    kept = {
        section: {name: entries[name] for name in sorted(entries) if (section, name) in used}
        for section, entries in components.items()
        if section != "securitySchemes"
    }
    # Security schemes are named by operations' `security`, not by $ref: each version keeps them all.
    kept["securitySchemes"] = components.get("securitySchemes", {})
    return {**document, "paths": paths, "components": {key: value for key, value in kept.items() if value}}


def referenced_components(components: dict, root) -> set[tuple[str, str]]:
    """(section, name) of every component that `root` refers to, directly or through other components."""
    found: set[tuple[str, str]] = set()
    pending = set(references(root))
    while pending:
        reference = pending.pop()
        if reference in found or reference[1] not in components.get(reference[0], {}):
            continue
        found.add(reference)
        pending |= set(references(components[reference[0]][reference[1]]))
    return found


def references(value) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        target = value.get("$ref")
        if isinstance(target, str) and target.startswith("#/components/"):
            section, name = target.split("/")[2:4]
            yield section, name
        for item in value.values():
            yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


# --- events as an OpenAPI document, for openapi-diff ---------------------------------------------------


def events_as_openapi(asyncapi: dict) -> dict:
    """One GET per event type and version (/order.created.v1: a message of a channel) whose 200 response
    body is the message's payload.

    A published event is read by its consumers as a response is read by its clients: adding a field or
    narrowing a type is safe, while removing a field, making it optional or widening a type breaks a
    consumer; a removed path (event version) breaks, a new one does not. `#/components/schemas/...`
    references keep working: the synthetic document carries the same schemas at the same place.
    """
    paths = {
        f"/{message_id}": {"get": event_operation(asyncapi, message)}
        for channel in asyncapi.get("channels", {}).values()
        for message_id, message in sorted(channel.get("messages", {}).items())
    }
    schemas = asyncapi.get("components", {}).get("schemas", {})
    openapi_schemas = {name: openapi_schema(schema) for name, schema in schemas.items()}
    return {**EMPTY_OPENAPI, "paths": paths, "components": {"schemas": openapi_schemas}}


def event_operation(asyncapi: dict, message: dict) -> dict:
    payload = openapi_schema(resolve(asyncapi, message).get("payload", {}))
    body = {"application/json": {"schema": payload}}
    return {"responses": {"200": {"description": "the event as published", "content": body}}}


def openapi_schema(schema):
    """A JSON Schema (draft-07 to 2020-12) as the OpenAPI 3.0 Schema Object that openapi-diff accepts.

    The same constraints, spelled as OpenAPI 3.0 spells them: `type: [T, "null"]` is `type: T` with
    `nullable`, `const` a one-value `enum`, a numeric `exclusiveMinimum` a `minimum` with the flag.
    Annotations OpenAPI 3.0 does not know ($schema, $comment, examples) change nothing that validates.
    """
    if isinstance(schema, list):
        return [openapi_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {}
    for key, value in schema.items():
        if key in JSON_SCHEMA_ANNOTATIONS:
            continue
        if key == "const":
            result["enum"] = [value]
        elif key in {"properties", "patternProperties"}:
            result[key] = {name: openapi_schema(item) for name, item in value.items()}
        elif key in {"items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"}:
            result[key] = openapi_schema(value)
        elif key in {"exclusiveMinimum", "exclusiveMaximum"} and not isinstance(value, bool):
            result[key.replace("exclusiveM", "m")] = value
            result[key] = True
        else:
            result[key] = value
    if isinstance(schema.get("type"), list):
        result.update(openapi_type(schema["type"]))
        if "anyOf" in result and "type" in result:
            del result["type"]
    return result


def openapi_type(types: list[str]) -> dict:
    """`type: [T, "null"]` as OpenAPI 3.0 has it: one type, or anyOf several, and `nullable`."""
    present = [name for name in types if name != "null"]
    spelled: dict = {"type": present[0]} if len(present) == 1 else {"anyOf": [{"type": t} for t in present]}
    return spelled | ({"nullable": True} if "null" in types else {})


def resolve(document: dict, value: dict) -> dict:
    """`value`, or what its local $ref (#/components/messages/...) points to."""
    target = value.get("$ref")
    if not isinstance(target, str) or not target.startswith("#/"):
        return value
    for key in target[2:].split("/"):
        document = document[key.replace("~1", "/").replace("~0", "~")]
    return document


# --- comparing with the snapshots ------------------------------------------------------------------------


def stored_contracts(directory: Path = CONTRACTS_DIR) -> dict[str, dict]:
    """The committed snapshots, by name relative to `directory`."""
    files = sorted(directory.glob("openapi/*/*.yaml")) + sorted(directory.glob(ASYNCAPI_SNAPSHOT))
    return {file.relative_to(directory).as_posix(): yaml.safe_load(file.read_text()) for file in files}


@dataclass(frozen=True)
class Review:
    """One snapshot against the code: what openapi-diff finds, and every location that changed."""

    name: str  # openapi/catalog/v1.yaml, asyncapi.yaml
    stored: dict | None  # None: the code has a contract with no snapshot yet
    current: dict | None  # None: the code no longer has it (an API version no longer served)
    outcome: openapi_diff.Outcome
    changes: tuple[str, ...]

    @property
    def up_to_date(self) -> bool:
        return self.stored == self.current

    @property
    def breaking(self) -> bool:
        return bool(self.outcome.breaking)

    @property
    def is_events(self) -> bool:
        return self.name == ASYNCAPI_SNAPSHOT


def review_all(stored: dict[str, dict], current: dict[str, dict]) -> list[Review]:
    return [
        review(name, stored.get(name), current.get(name)) for name in sorted(stored.keys() | current.keys())
    ]


def review(name: str, stored: dict | None, current: dict | None) -> Review:
    if stored == current:
        return Review(name, stored, current, openapi_diff.Outcome((), (), ()), ())
    comparable = events_as_openapi if name == ASYNCAPI_SNAPSHOT else (lambda document: document)
    empty = {} if name == ASYNCAPI_SNAPSHOT else EMPTY_OPENAPI
    outcome = openapi_diff.diff(comparable(stored or empty), comparable(current or empty))
    # A whole new or removed document: its paths (the tool's findings) say it all.
    changes = tuple(changed_locations(stored, current)) if stored and current else ()
    return Review(name, stored, current, outcome, changes)


def changed_locations(old, new, where: str = "") -> Iterator[str]:
    """`removed components.schemas.Product.properties.sku`, ...: where two documents differ.

    Not a classification (openapi-diff's is): it names the field that the tool's finding is about, and
    shows the changes the tool does not look at (descriptions, summaries, tags, parameters).
    """
    old, new = by_name(old), by_name(new)
    if not (isinstance(old, dict) and isinstance(new, dict)):
        yield f"changed {where}: {short(old)} -> {short(new)}"
        return
    for key in sorted(old.keys() | new.keys(), key=str):
        here = f"{where}.{key}" if where else str(key)
        if key not in new:
            yield f"removed {here}"
        elif key not in old:
            yield f"added {here}"
        elif old[key] != new[key]:
            yield from changed_locations(old[key], new[key], here)


def by_name(value):
    """A list of named objects (an operation's parameters) as a dict by name, so changes name the item."""
    if isinstance(value, list) and value and all(isinstance(item, dict) and "name" in item for item in value):
        named = {str(item["name"]): item for item in value}
        return named if len(named) == len(value) else value
    return value


def short(value) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."


# --- what the commands say ------------------------------------------------------------------------------


def report(review: Review) -> list[str]:
    """What changed in one snapshot and what to do about it."""
    names = {*((review.stored or {}).get("paths", {})), *((review.current or {}).get("paths", {}))}
    if review.is_events:
        names = {
            *events_as_openapi(review.stored or {})["paths"],
            *events_as_openapi(review.current or {})["paths"],
        }
    describe = lambda difference: difference.describe(names, events=review.is_events)  # noqa: E731
    lines = [f"{contract_title(review)} ({display(CONTRACTS_DIR / review.name)}):"]
    lines += [f"  BREAKING      {describe(difference)}" for difference in review.outcome.breaking]
    lines += [f"  non-breaking  {describe(difference)}" for difference in review.outcome.non_breaking]
    lines += [f"  unclassified  {describe(difference)}" for difference in review.outcome.unclassified]
    if not any((review.outcome.breaking, review.outcome.non_breaking, review.outcome.unclassified)):
        lines.append(
            "  non-breaking  changes openapi-diff does not classify (texts, tags, examples, parameters)"
        )
    lines += ["  in the document:"] if review.changes else []
    lines += [f"    {change}" for change in review.changes[:CHANGES_SHOWN]]
    if len(review.changes) > CHANGES_SHOWN:
        lines.append(f"    ... and {len(review.changes) - CHANGES_SHOWN} more")
    lines.append(f"  {advice(review)}")
    return lines


def contract_title(review: Review) -> str:
    if review.is_events:
        return "events (AsyncAPI of domain.events)"
    _, service, version = review.name.removesuffix(".yaml").split("/")
    if review.current is None:
        return f"{service} API {version}, no longer served"
    return f"{service} API {version}" + (", new" if review.stored is None else "")


def advice(review: Review) -> str:
    if review.breaking and review.is_events:
        return (
            "A breaking change to an event needs a new version of it (a new message, e.g. v2), published "
            "beside the old one until every consumer accepts the new one; the old version's schema stays "
            "as it is (docs/contracts.md)."
        )
    if review.breaking:
        _, service, version = review.name.removesuffix(".yaml").split("/")
        following = f"v{int(version[1:]) + 1}"
        return (
            "A breaking change needs a new API version: serve the changed operations under "
            f"/api/{following}/ (its snapshot: contracts/openapi/{service}/{following}.yaml) while "
            f"{version} keeps answering exactly as before (docs/contracts.md). Only for a version no client "
            "uses any more: `python3 manage_all.py contracts update --allow-breaking`."
        )
    return (
        "Nothing breaking that openapi-diff judges (it does not compare parameters, enum, const, format or "
        "pattern: review those above): run `python3 manage_all.py contracts update` and commit the "
        "snapshot, so that it keeps matching the code."
    )


def check(reviews: list[Review], directory: Path = CONTRACTS_DIR) -> int:
    """0 when every snapshot (and the AsyncAPI's JSON copy) matches the code; 1, with what changed and what
    to do, otherwise."""
    stale = [review for review in reviews if not review.up_to_date]
    for review in stale:
        print("\n".join(report(review)))
    breaking = sum(review.breaking for review in stale)
    copy_is_stale = json_copy_is_stale(directory)
    if copy_is_stale:
        print(
            f"contracts: {display(directory / ASYNCAPI_JSON_COPY)} is not {ASYNCAPI_SNAPSHOT} as JSON: "
            "run `python3 manage_all.py contracts update`"
        )
    if not stale and not copy_is_stale:
        print(f"contracts: all {len(reviews)} snapshots match the code")
        return 0
    print(
        f"contracts: {len(stale)} of {len(reviews)} snapshots differ from the code, "
        f"{breaking} with breaking changes"
    )
    return 1


def update(reviews: list[Review], directory: Path = CONTRACTS_DIR, *, allow_breaking: bool = False) -> int:
    """Rewrite the snapshots that differ from the code; none at all while a change breaks, unless allowed."""
    breaking = [review for review in reviews if review.breaking]
    if breaking and not allow_breaking:
        for review in breaking:
            print("\n".join(report(review)))
        print(
            "contracts update: refused, nothing written: breaking changes in "
            f"{', '.join(review.name for review in breaking)}. Add a new version instead; to accept the "
            "break (a version no client uses any more): "
            "`python3 manage_all.py contracts update --allow-breaking`."
        )
        return 1
    stale = [review for review in reviews if not review.up_to_date]
    for review in stale:
        write_snapshot(directory / review.name, review.current)
    if json_copy_is_stale(directory):  # e.g. deleted or edited by hand, its snapshot unchanged
        write_json_copy(directory)
    unchanged = len(reviews) - len(stale)
    print(f"contracts update: {len(stale)} snapshot(s) rewritten, {unchanged} already up to date")
    return 0


def write_snapshot(path: Path, document: dict | None) -> None:
    if document is None:
        path.unlink()
        print(f"  removed {display(path)}")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(document))
    print(f"  wrote {display(path)}")
    if path.name == ASYNCAPI_SNAPSHOT:
        write_json_copy(path.parent)


# --- the AsyncAPI snapshot as JSON ------------------------------------------------------------------------


def render_json_copy(snapshot: dict) -> str:
    """The JSON copy's text: the snapshot's document, keys sorted like the YAML's, one stable form."""
    return json.dumps(snapshot, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_json_copy(directory: Path = CONTRACTS_DIR) -> None:
    """(Re)write the JSON copy from the YAML snapshot in `directory`; remove it when there is none."""
    snapshot, copy = directory / ASYNCAPI_SNAPSHOT, directory / ASYNCAPI_JSON_COPY
    if not snapshot.exists():
        copy.unlink(missing_ok=True)
        return
    copy.write_text(render_json_copy(yaml.safe_load(snapshot.read_text())))
    print(f"  wrote {display(copy)}")


def json_copy_is_stale(directory: Path = CONTRACTS_DIR) -> bool:
    """Whether the JSON copy is missing, extra or not byte for byte the YAML snapshot's document."""
    snapshot, copy = directory / ASYNCAPI_SNAPSHOT, directory / ASYNCAPI_JSON_COPY
    if not snapshot.exists():
        return copy.exists()
    expected = render_json_copy(yaml.safe_load(snapshot.read_text()))
    return not copy.exists() or copy.read_text() != expected
