"""`manage_all.py contracts`: the committed OpenAPI and AsyncAPI snapshots (contracts/) against the code.

The first test is CI's guard: it runs the real command on the real tree, so that a breaking change to any
API or event fails the suite with the command's message. The others give the same check snapshots that
differ from the code in one chosen way, in a temporary directory, and read what it answers. The documents
are generated from the code once for the module (a Django start-up per service).
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest

from devtools import contracts, instance
from tests.conftest import ROOT

CATALOG_V1 = "openapi/catalog/v1.yaml"
IDENTITY_V1 = "openapi/identity/v1.yaml"
EVENTS = contracts.ASYNCAPI_SNAPSHOT


@pytest.fixture(scope="module")
def current() -> dict[str, dict]:
    """Every contract as the code has it now (what `contracts check` compares with the snapshots)."""
    return contracts.current_contracts(instance.load_platform())


def snapshots_of(current: dict[str, dict], tmp_path, changed: dict[str, dict]) -> dict[str, dict]:
    """Snapshots written to tmp_path: the code's documents, with the `changed` ones in their place."""
    documents = current | changed
    for name, document in documents.items():
        contracts.write_snapshot(tmp_path / name, document)
    return contracts.stored_contracts(tmp_path)


def check(stored: dict[str, dict], current: dict[str, dict], capsys) -> tuple[int, str]:
    status = contracts.check(contracts.review_all(stored, current))
    return status, capsys.readouterr().out


def test_the_committed_snapshots_match_the_code():
    """CI's guard: the real command on the real tree (a breaking change fails here, with its message)."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage_all.py"), "contracts", "check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "snapshots match the code" in result.stdout


def test_fresh_snapshots_pass_and_writing_them_again_changes_no_byte(current, tmp_path, capsys):
    stored = snapshots_of(current, tmp_path, {})
    first = {path: path.read_bytes() for path in tmp_path.rglob("*.yaml")}

    status, output = check(stored, current, capsys)
    assert status == 0, output
    assert f"all {len(current)} snapshots match the code" in output
    assert contracts.update(contracts.review_all(stored, current), tmp_path) == 0
    assert {path: path.read_bytes() for path in tmp_path.rglob("*.yaml")} == first
    assert {CATALOG_V1, "openapi/catalog/v2.yaml", IDENTITY_V1, EVENTS} <= current.keys()


def test_a_response_field_the_code_no_longer_sends_is_breaking(current, tmp_path, capsys):
    snapshot = copy.deepcopy(current[CATALOG_V1])
    product = snapshot["components"]["schemas"]["Product"]
    product["properties"]["legacy_code"] = {"type": "string"}
    product["required"].append("legacy_code")

    status, output = check(snapshots_of(current, tmp_path, {CATALOG_V1: snapshot}), current, capsys)

    assert status == 1, output
    assert "catalog API v1 (contracts/openapi/catalog/v1.yaml):" in output
    assert (
        "BREAKING      GET /api/v1/products/{id}/ responses.200.content.application/json.schema: " in output
    )
    assert "response.body.scope.add" in output
    assert "removed components.schemas.Product.properties.legacy_code" in output
    assert "serve the changed operations under /api/v2/" in output
    assert "while v1 keeps answering exactly as before" in output
    assert f"1 of {len(current)} snapshots differ from the code, 1 with breaking changes" in output


def test_a_path_the_code_no_longer_has_is_breaking(current, tmp_path, capsys):
    snapshot = copy.deepcopy(current[CATALOG_V1])
    snapshot["paths"]["/api/v1/brands/"] = snapshot["paths"]["/api/v1/categories/"]

    status, output = check(snapshots_of(current, tmp_path, {CATALOG_V1: snapshot}), current, capsys)

    assert status == 1, output
    assert "1 with breaking changes" in output
    assert "BREAKING      /api/v1/brands/: path.remove (the path is gone: its clients get 404)" in output


def test_a_new_required_request_field_is_breaking(current, tmp_path, capsys):
    """The code now requires a field that clients written against the snapshot do not send."""
    snapshot = copy.deepcopy(current[IDENTITY_V1])
    register = snapshot["components"]["schemas"]["RegisterRequest"]
    dropped = register["required"].pop()
    del register["properties"][dropped]

    status, output = check(snapshots_of(current, tmp_path, {IDENTITY_V1: snapshot}), current, capsys)

    assert status == 1, output
    assert "1 with breaking changes" in output
    assert "BREAKING      POST /api/v1/auth/register/ requestBody" in output
    assert "request.body.scope.remove" in output
    assert f"added components.schemas.RegisterRequest.properties.{dropped}" in output


def test_an_api_version_no_longer_served_is_breaking(current, tmp_path, capsys):
    retired = copy.deepcopy(current["openapi/catalog/v2.yaml"])
    retired["paths"] = {path.replace("/v2/", "/v3/"): item for path, item in retired["paths"].items()}

    stored = snapshots_of(current, tmp_path, {"openapi/catalog/v3.yaml": retired})
    status, output = check(stored, current, capsys)

    assert status == 1, output
    assert "1 with breaking changes" in output
    assert "catalog API v3, no longer served (contracts/openapi/catalog/v3.yaml):" in output
    assert "BREAKING      /api/v3/products/: path.remove" in output


def test_a_non_breaking_change_asks_for_an_update_and_update_writes_it(current, tmp_path, capsys):
    """A new path, and a changed description (which openapi-diff does not classify): both drift."""
    snapshot = copy.deepcopy(current[CATALOG_V1])
    del snapshot["paths"]["/api/v1/categories/"]
    snapshot["info"]["title"] = "an older title"
    stored = snapshots_of(current, tmp_path, {CATALOG_V1: snapshot})

    status, output = check(stored, current, capsys)

    assert status == 1, output
    assert "non-breaking  /api/v1/categories/: path.add (a new path)" in output
    assert 'changed info.title: "an older title" -> "catalog API"' in output
    assert "run `python3 manage_all.py contracts update` and commit the snapshot" in output
    assert "BREAKING" not in output
    assert contracts.update(contracts.review_all(stored, current), tmp_path) == 0
    assert contracts.stored_contracts(tmp_path)[CATALOG_V1] == current[CATALOG_V1]


def test_update_refuses_a_breaking_change_unless_allowed(current, tmp_path, capsys):
    snapshot = copy.deepcopy(current[CATALOG_V1])
    snapshot["paths"]["/api/v1/brands/"] = snapshot["paths"]["/api/v1/categories/"]
    stored = snapshots_of(current, tmp_path, {CATALOG_V1: snapshot})
    before = (tmp_path / CATALOG_V1).read_text()

    refused = contracts.update(contracts.review_all(stored, current), tmp_path)
    refusal = capsys.readouterr().out
    allowed = contracts.update(contracts.review_all(stored, current), tmp_path, allow_breaking=True)

    assert refused == 1, refusal
    assert (
        "contracts update: refused, nothing written: breaking changes in openapi/catalog/v1.yaml" in refusal
    )
    assert "--allow-breaking" in refusal
    assert "/api/v1/brands/: path.remove" in refusal
    assert before != (tmp_path / CATALOG_V1).read_text()  # written only by the allowed update
    assert allowed == 0
    assert contracts.stored_contracts(tmp_path)[CATALOG_V1] == current[CATALOG_V1]


def test_the_cli_refuses_allow_breaking_with_check():
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage_all.py"), "contracts", "check", "--allow-breaking"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 1
    assert "--allow-breaking goes with `contracts update`" in result.stderr


# --- events ----------------------------------------------------------------------------------------------


def test_a_field_removed_from_a_real_event_is_breaking(current, tmp_path, capsys):
    """The snapshot's order.created v1 data has a required field that the code's no longer has."""
    snapshot = copy.deepcopy(current[EVENTS])
    data = snapshot["components"]["schemas"]["order.created.v1"]
    data["properties"]["coupon"] = {"type": "string"}
    data["required"].append("coupon")

    status, output = check(snapshots_of(current, tmp_path, {EVENTS: snapshot}), current, capsys)

    assert status == 1, output
    assert "1 with breaking changes" in output
    assert "events (AsyncAPI of domain.events) (contracts/asyncapi.yaml):" in output
    assert "BREAKING      event order.created.v1 payload: response.body.scope.add" in output
    assert "removed components.schemas.order.created.v1.properties.coupon" in output
    assert "needs a new version of it" in output


def asyncapi(*, versions=(1,), amount=None) -> dict:
    """A small AsyncAPI 3.0 document shaped as shared.contracts.asyncapi makes it (envelope + data)."""
    data = {
        "type": "object",
        "required": ["order_id", "amount"],
        "properties": {
            "order_id": {"type": "string", "format": "uuid"},
            "amount": amount or {"type": "string"},
        },
    }
    envelope = {
        "type": "object",
        "required": ["id", "type", "version", "causation_id", "data"],
        "properties": {
            "id": {"type": "string"},
            "type": {"type": "string"},
            "version": {"type": "integer", "minimum": 1},
            "causation_id": {"type": ["string", "null"]},
            "data": {"type": "object"},
        },
    }

    def message(version: int) -> dict:
        own = {
            "type": {"const": "order.created"},
            "data": {"$ref": f"#/components/schemas/order.created.v{version}"},
        }
        payload = {
            "allOf": [{"$ref": "#/components/schemas/Envelope"}, {"type": "object", "properties": own}]
        }
        return {"name": "order.created", "payload": payload}

    keys = [f"order.created.v{version}" for version in versions]
    return contracts.canonical(
        {
            "asyncapi": "3.0.0",
            "info": {"title": "events", "version": "1.0.0"},
            "channels": {
                "order.created": {
                    "address": "order.created",
                    "messages": {key: {"$ref": f"#/components/messages/{key}"} for key in keys},
                }
            },
            "components": {
                "schemas": {"Envelope": envelope, **{key: data for key in keys}},
                "messages": {key: message(version) for key, version in zip(keys, versions, strict=True)},
            },
        }
    )


def review_events(stored: dict, current: dict, capsys) -> tuple[int, str]:
    return check({EVENTS: stored}, {EVENTS: current}, capsys)


def test_a_widened_event_field_type_is_breaking(capsys):
    status, output = review_events(
        asyncapi(), asyncapi(amount={"type": ["string", "number", "null"]}), capsys
    )

    assert status == 1, output
    assert "1 with breaking changes" in output
    assert "BREAKING      event order.created.v1 payload: response.body.scope.add" in output
    assert 'changed components.schemas.order.created.v1.properties.amount.type: "string" -> ' in output


def test_a_narrowed_event_field_is_not_breaking(capsys):
    """What a publisher sends may become narrower (a string or a number, now a string): consumers cope."""
    status, output = review_events(asyncapi(amount={"type": ["string", "number"]}), asyncapi(), capsys)

    assert status == 1, output
    assert "BREAKING" not in output and "0 with breaking changes" in output
    assert "non-breaking  event order.created.v1 payload: response.body.scope.remove" in output


def test_a_removed_event_version_is_breaking_and_a_new_one_is_not(capsys):
    status, added = review_events(asyncapi(versions=(1,)), asyncapi(versions=(1, 2)), capsys)
    assert status == 1
    assert "non-breaking  event order.created.v2: path.add (a new event version)" in added
    assert "BREAKING" not in added and "0 with breaking changes" in added

    status, removed = review_events(asyncapi(versions=(1, 2)), asyncapi(versions=(2,)), capsys)
    assert status == 1
    assert "1 of 1 snapshots differ from the code, 1 with breaking changes" in removed
    assert (
        "BREAKING      event order.created.v1: path.remove (the event version is no longer published"
        in removed
    )


def test_the_asyncapi_json_copy_is_written_with_its_snapshot_and_checked(tmp_path, capsys):
    """contracts/asyncapi.json, what the gateway's /docs/ serves and reads, is the YAML snapshot as JSON:
    written with it, and a copy that no longer reads as it fails the check until `update` rewrites it."""
    document = {"asyncapi": "3.0.0", "info": {"title": "events", "version": "1.0.0"}, "channels": {}}
    contracts.write_snapshot(tmp_path / EVENTS, document)
    json_copy = tmp_path / contracts.ASYNCAPI_JSON_COPY
    reviews = contracts.review_all(contracts.stored_contracts(tmp_path), {EVENTS: document})
    assert json.loads(json_copy.read_text()) == document
    assert contracts.check(reviews, tmp_path) == 0

    json_copy.write_text(json.dumps({**document, "channels": {"edited.by_hand": {}}}))
    assert contracts.check(reviews, tmp_path) == 1
    assert "asyncapi.json is not asyncapi.yaml as JSON" in capsys.readouterr().out
    json_copy.unlink()
    assert contracts.check(reviews, tmp_path) == 1

    assert contracts.update(reviews, tmp_path) == 0
    assert json.loads(json_copy.read_text()) == document
    assert contracts.check(reviews, tmp_path) == 0
