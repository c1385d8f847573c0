"""Event contracts (shared.contracts): the catalogue against the services' code, the AsyncAPI document
against the official AsyncAPI 3.0 schema, validation at publish and consume time, and a version 2 rolled
out next to version 1 through the real broker."""

from __future__ import annotations

import ast
import copy
import json
import uuid

import jsonschema
import pytest
from django.db import transaction

from shared import contracts
from shared.contracts import asyncapi
from shared.contracts.events import CATALOGUE
from shared.messaging import inbox
from shared.messaging.events import InvalidEventData, UnsupportedEventVersion, new_event, publish_event
from shared.messaging.models import InboxMessage, OutboxEvent
from shared.paths import REPO_ROOT
from shared.testing import event_data, event_envelope, wait_until
from tests.ledger.models import Credit
from tests.ledger.services import account_credit

SERVICES_DIR = REPO_ROOT / "services"
ASYNCAPI_SCHEMA = REPO_ROOT / "tools" / "asyncapi-specs" / "node_modules" / "@asyncapi" / "specs" / "schemas"
# The events of design section 3, each with a version 1.
DESIGN_EVENTS = {
    "user.registered", "product.created", "product.updated", "product.deleted", "order.created",
    "inventory.reserved", "inventory.reservation_failed", "inventory.reservation_expired",
    "payment.succeeded", "payment.failed", "payment.refunded", "order.confirmed", "order.cancelled",
    "order.rejected",
}  # fmt: skip
PUBLISHING_CALLS = {"publish_event", "_publish"}  # payments publishes through its own `_publish`


# --- the catalogue against the code -------------------------------------------------------------------


def _call_name(node: ast.Call) -> str | None:
    return getattr(node.func, "id", None) or getattr(node.func, "attr", None)


def _service_calls(service: str):
    for path in sorted((SERVICES_DIR / service / service).glob("*.py")):
        yield from (node for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Call))


def subscriptions_declared(service: str) -> set[str]:
    """The event types of `service_settings(subscriptions={...})` in the service's settings, read from
    the source (each settings module applies itself to its own globals: they cannot all be imported)."""
    tree = ast.parse((SERVICES_DIR / service / "config" / "settings.py").read_text())
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
    declared = [
        keyword.value
        for call in calls
        if _call_name(call) == "service_settings"
        for keyword in call.keywords
        if keyword.arg == "subscriptions"
    ]
    return set(ast.literal_eval(declared[0])) if declared else set()


def types_published(service: str) -> set[str]:
    """The event types the service's modules pass, as a literal, to publish_event (or payments' _publish)."""
    return {
        call.args[0].value
        for call in _service_calls(service)
        if _call_name(call) in PUBLISHING_CALLS and call.args and isinstance(call.args[0], ast.Constant)
    }


SERVICES = sorted(path.parent.name for path in SERVICES_DIR.glob("*/manage.py"))


def test_every_event_of_the_design_has_a_version_1_contract_and_nothing_is_declared_twice():
    keys = [(c.type, c.version) for c in CATALOGUE]

    assert {event_type for event_type, version in keys if version == 1} == DESIGN_EVENTS
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize("service", SERVICES)
def test_the_catalogue_names_as_consumers_exactly_the_services_that_subscribe(service):
    consumed = {c.type for c in CATALOGUE if service in c.consumers}

    assert consumed == subscriptions_declared(service)


@pytest.mark.parametrize("service", SERVICES)
def test_the_catalogue_names_as_producer_exactly_the_service_that_publishes(service):
    produced = {c.type for c in CATALOGUE if c.producer == service}

    assert produced == types_published(service)


def test_the_source_readers_see_what_a_service_declares():
    # Guards the two readers above against finding nothing (and so agreeing with an empty catalogue).
    assert "order.created" in subscriptions_declared("inventory")
    assert subscriptions_declared("catalog") == set()
    assert types_published("payments") >= {"payment.succeeded", "payment.refunded", "payment.failed"}


@pytest.mark.parametrize("contract", CATALOGUE, ids=lambda c: f"{c.type}.v{c.version}")
def test_each_schema_is_valid_draft_2020_12_and_its_example_matches_it(contract):
    jsonschema.Draft202012Validator.check_schema(contract.schema)

    assert contracts.data_errors(contract.type, contract.version, contract.example) == []
    contracts.check_envelope(asyncapi.example_envelope(contract))


def test_data_errors_name_the_path_and_the_problem():
    data = event_data("order.created", without=("total",), valid=False)
    data["lines"][1]["quantity"] = 0

    assert contracts.data_errors("order.created", 1, data) == [
        "data: 'total' is a required property",
        "data.lines.1.quantity: 0 is less than the minimum of 1",
    ]
    with pytest.raises(contracts.EventContractError, match=r"no contract declares order\.created version 9"):
        contracts.data_errors("order.created", 9, data)


# --- the AsyncAPI document -----------------------------------------------------------------------------


def _official_validator() -> jsonschema.Draft7Validator:
    path = ASYNCAPI_SCHEMA / f"{asyncapi.ASYNCAPI_VERSION}.json"
    assert path.exists(), f"{path} is missing: `npm ci --prefix tools/asyncapi-specs` (manage_all.py does)"
    return jsonschema.Draft7Validator(json.loads(path.read_text()))


def test_the_asyncapi_document_is_valid_asyncapi_3_0():
    validator = _official_validator()
    document = asyncapi.document()
    broken = copy.deepcopy(document)
    broken["operations"]["orders.send.order.created"]["action"] = "publish"  # AsyncAPI 2's word

    assert [error.message for error in validator.iter_errors(document)] == []
    assert list(validator.iter_errors(broken)), "the official schema must refuse a broken document"
    assert json.loads(json.dumps(document)) == document  # plain JSON


def test_the_asyncapi_document_has_a_channel_per_type_and_a_message_per_version():
    document = asyncapi.document()

    assert set(document["channels"]) == {c.type for c in CATALOGUE}
    assert list(document["channels"]["order.created"]["messages"]) == ["order.created.v1", "order.created.v2"]
    assert document["channels"]["order.created"]["bindings"]["amqp"]["exchange"]["name"] == "domain.events"
    receive = document["operations"]["inventory.receive.order.created"]
    assert (receive["action"], receive["x-queue"]) == ("receive", "inventory.events")
    assert document["operations"]["orders.send.order.created"]["action"] == "send"
    assert set(document["operations"]) >= {
        f"{consumer}.receive.{c.type}" for c in CATALOGUE for consumer in c.consumers
    }


def test_each_asyncapi_payload_accepts_its_example_and_refuses_another_versions_data():
    document = asyncapi.document()
    messages = document["components"]["messages"]

    def payload_errors(key: str, envelope: dict) -> list:
        schema = {**messages[key]["payload"], "components": document["components"]}
        return list(jsonschema.Draft7Validator(schema).iter_errors(envelope))

    for key, message in messages.items():
        assert payload_errors(key, message["examples"][0]["payload"]) == [], key
    v1_as_v2 = {**messages["order.created.v1"]["examples"][0]["payload"], "version": 2}
    assert payload_errors("order.created.v2", v1_as_v2)


def test_the_document_is_printed_by_running_the_module():
    import subprocess
    import sys

    output = subprocess.run(
        [sys.executable, "-m", "shared.contracts.asyncapi"],
        cwd=REPO_ROOT / "shared", capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip

    assert json.loads(output) == asyncapi.document()


# --- publishing ---------------------------------------------------------------------------------------


def _publish(event_type: str, data: dict, **kwargs):
    with transaction.atomic():
        return publish_event(event_type, data, **kwargs)


@pytest.mark.django_db
def test_publish_event_refuses_an_event_without_a_contract_or_with_data_breaking_it():
    with pytest.raises(contracts.EventContractError, match=r"no contract declares ledger\.unheard version 1"):
        _publish("ledger.unheard", {})
    with pytest.raises(contracts.EventContractError, match=r"data\.amount: 'lots' is not of type 'integer'"):
        _publish("ledger.credited", {"account": "a", "amount": "lots"})
    unknown_version = r"no contract declares ledger\.credited version 3"
    with pytest.raises(contracts.EventContractError, match=unknown_version):
        _publish("ledger.credited", {"account": "a", "amount": 1}, version=3)

    assert not OutboxEvent.objects.exists()
    assert _publish("ledger.credited", {"account": "a", "amount": 1, "extra": "allowed"}).version == 1


@pytest.mark.django_db
def test_a_service_publishes_the_version_its_settings_name(settings):
    settings.EVENT_VERSIONS = {"ledger.credited": 2}

    event = _publish("ledger.credited", {"account": "a", "amount": {"amount": 1, "currency": "EUR"}})

    assert event.version == 2
    assert OutboxEvent.objects.get(id=event.id).envelope["version"] == 2
    with pytest.raises(contracts.EventContractError, match=r"ledger\.credited version 2 breaks its schema"):
        _publish("ledger.credited", {"account": "a", "amount": 1})  # version 1's data


# --- consuming ----------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_invalid_event_is_refused_before_any_handler_runs_and_leaves_no_trace():
    envelope = event_envelope("ledger.credited", amount="lots", valid=False)

    with pytest.raises(InvalidEventData, match=r"data\.amount: 'lots' is not of type 'integer'") as refused:
        inbox.deliver(envelope)

    assert refused.value.reason == "invalid_event"
    assert not Credit.objects.exists()
    assert not InboxMessage.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_version_a_handler_accepts_but_no_contract_declares_is_unsupported(settings):
    settings.EXTRA_EVENT_CONTRACTS = []  # the ledger's contracts unknown to this consumer
    envelope = new_event("ledger.credited", {"account": "a", "amount": 1}).as_envelope()

    with pytest.raises(UnsupportedEventVersion, match=r"no contract declares ledger\.credited version 1"):
        inbox.deliver(envelope)
    assert not Credit.objects.exists()


# --- versions: the upcaster and a mixed rollout -------------------------------------------------------


def test_the_upcaster_turns_order_created_v1_into_the_v2_shape():
    v1 = contracts.contract("order.created", 1).example
    event = _event_of(event_envelope("order.created"))

    upcast = contracts.upcast(event)

    assert upcast.version == 2
    assert upcast.data == contracts.contract("order.created", 2).example
    assert upcast.data["total"] == {"amount": v1["total"], "currency": v1["currency"]}
    assert [line["unit_price"] for line in upcast.data["lines"]] == [
        {"amount": "12.50", "currency": "USD"},
        {"amount": "5.00", "currency": "USD"},
    ]
    assert "currency" not in upcast.data
    assert contracts.data_errors("order.created", 2, upcast.data) == []
    assert event.data == v1  # the delivered event is left as it came


def test_upcasting_an_event_already_in_the_target_version_changes_nothing():
    event = _event_of(event_envelope("order.created", 2))

    assert contracts.upcast(event) == event
    assert contracts.upcast(_event_of(event_envelope("order.created")), to_version=1).version == 1


def _event_of(envelope: dict):
    from shared.messaging.events import Event

    return Event.from_envelope(envelope)


def test_event_data_builds_from_the_example_and_refuses_what_breaks_the_schema():
    order_id = str(uuid.uuid4())

    assert event_data("payment.failed", order_id=order_id)["order_id"] == order_id
    assert "message" not in event_data("payment.failed", without=("message",))
    with pytest.raises(contracts.EventContractError, match=r"data\.order_id: 'nope' is not a 'uuid'"):
        event_data("payment.failed", order_id="nope")
    assert event_data("payment.failed", order_id="nope", valid=False)["order_id"] == "nope"


@pytest.mark.django_db(transaction=True)
def test_versions_1_and_2_published_side_by_side_are_both_applied_through_the_broker(worker, observe):
    observer = observe(["ledger.credited"])

    old_publisher = account_credit(account="mixed-v1", amount=3)
    new_publisher = _publish(
        "ledger.credited", {"account": "mixed-v2", "amount": {"amount": 4, "currency": "EUR"}}, version=2
    )

    observer.wait_for(2)
    assert {(e["id"], e["version"]) for e in observer.envelopes()} == {
        (old_publisher.id, 1),
        (new_publisher.id, 2),
    }
    for event, account, amount in ((old_publisher, "mixed-v1", 3), (new_publisher, "mixed-v2", 4)):
        credit = wait_until(
            lambda event=event: Credit.objects.filter(event_id=event.id).first(), timeout=60, message=account
        )
        assert (credit.account, credit.amount) == (account, amount)
