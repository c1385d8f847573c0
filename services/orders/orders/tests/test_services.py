"""orders' service functions called directly: placing orders, pricing fallback, idempotency, purge."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from orders import services, tasks
from orders.models import (
    IdempotencyRecord,
    IdempotencyState,
    Order,
    OrderStatus,
    OrderStatusChange,
    ProductReadModel,
)
from orders.services import LineRequest, StoredResponse
from orders.tests.helpers import ADDRESS, outbox
from shared.messaging.models import OutboxEvent
from shared.testing import outbox_envelopes
from shared.web.errors import Conflict, DomainError, Unprocessable

pytestmark = pytest.mark.django_db


def place(user_id, *lines: tuple[dict | str, int], email: str = "carla@example.com") -> Order:
    return services.order_create(
        user_id=user_id,
        customer_email=email,
        lines=[
            LineRequest(product_id=uuid.UUID(p["id"] if isinstance(p, dict) else p), quantity=q)
            for p, q in lines
        ],
        payment_token="tok_visa",
        shipping_address=dict(ADDRESS),
    )


def read_model_product(*, name="Lamp", price="30.00", is_active=True) -> ProductReadModel:
    return ProductReadModel.objects.create(
        product_id=uuid.uuid4(),
        sku=f"SKU-{name}",
        name=name,
        price=Decimal(price),
        currency="USD",
        is_active=is_active,
        updated_at=timezone.now(),
    )


# order_create


def test_order_create_prices_from_catalog_and_publishes_order_created(catalog):
    user_id = uuid.uuid4()
    pen = catalog.add(name="Pen", price="1.50")
    book = catalog.add(name="Book", price="12.00")

    order = place(user_id, (pen, 3), (book, 1))

    order.refresh_from_db()
    assert (order.status, order.status_reason, order.total, order.currency) == (
        OrderStatus.PENDING,
        "",
        Decimal("16.50"),
        "USD",
    )
    assert [(item.name, item.unit_price, item.quantity) for item in order.items.all()] == [
        ("Pen", Decimal("1.50"), 3),
        ("Book", Decimal("12.00"), 1),
    ]
    assert list(order.history.values_list("status", "reason")) == [("pending", "")]
    assert outbox() == [
        {
            "order_id": str(order.id),
            "user_id": str(user_id),
            "customer_email": "carla@example.com",
            "lines": [
                {"product_id": pen["id"], "name": "Pen", "unit_price": "1.50", "quantity": 3},
                {"product_id": book["id"], "name": "Book", "unit_price": "12.00", "quantity": 1},
            ],
            "total": "16.50",
            "currency": "USD",
            "payment_token": "tok_visa",
        }
    ]


def test_order_create_publishes_order_created_in_the_version_the_settings_name(catalog, settings):
    settings.EVENT_VERSIONS = {"order.created": 2}
    pen = catalog.add(name="Pen", price="1.50")

    order = place(uuid.uuid4(), (pen, 3))

    [envelope] = outbox_envelopes("order.created")
    assert envelope["version"] == 2
    assert (envelope["data"]["total"], "currency" in envelope["data"]) == (
        {"amount": "4.50", "currency": "USD"},
        False,
    )
    assert envelope["data"]["lines"] == [
        {
            "product_id": pen["id"],
            "name": "Pen",
            "unit_price": {"amount": "1.50", "currency": "USD"},
            "quantity": 3,
        }
    ]
    assert envelope["data"]["order_id"] == str(order.id)


def test_order_create_asks_catalog_once_for_all_products(catalog):
    products = [catalog.add(name=f"Item {n}", price="2.00") for n in range(5)]

    place(uuid.uuid4(), *((product, 1) for product in products))

    ids = ",".join(sorted(product["id"] for product in products))
    assert catalog.requests == [f"/api/v1/products/?ids={ids}&page_size=100"]


@pytest.mark.parametrize("is_active", [False, None], ids=["inactive", "unknown"])
def test_order_create_refuses_products_catalog_does_not_sell(catalog, is_active):
    sold = catalog.add(name="Pen", price="1.50")
    refused_id = catalog.add(name="Old", price="3.00", is_active=False)["id"] if is_active is False else None
    refused_id = refused_id or str(uuid.uuid4())

    with pytest.raises(DomainError) as caught:
        place(uuid.uuid4(), (sold, 1), (refused_id, 1))

    assert caught.value.code == "unknown_product"
    assert caught.value.fields == {"product_ids": [refused_id]}
    assert Order.objects.count() == 0
    assert OutboxEvent.objects.count() == 0


def test_order_create_uses_the_read_model_when_catalog_is_down():
    lamp = read_model_product(name="Lamp", price="30.00")

    order = place(uuid.uuid4(), (str(lamp.product_id), 2))

    assert order.total == Decimal("60.00")
    assert outbox("order.created")[0]["lines"] == [
        {"product_id": str(lamp.product_id), "name": "Lamp", "unit_price": "30.00", "quantity": 2}
    ]


def test_order_create_with_catalog_down_refuses_what_the_read_model_cannot_vouch_for():
    lamp = read_model_product()
    retired = read_model_product(name="Retired", is_active=False)
    missing_id = str(uuid.uuid4())

    with pytest.raises(DomainError) as caught:
        place(uuid.uuid4(), (str(lamp.product_id), 1), (str(retired.product_id), 1), (missing_id, 1))

    assert caught.value.code == "unknown_product"
    assert caught.value.fields == {"product_ids": sorted([str(retired.product_id), missing_id])}
    assert "could not be verified" in caught.value.message
    assert Order.objects.count() == 0


def test_order_create_falls_back_when_catalog_answers_errors(catalog):
    catalog.answer_status = 503
    lamp = read_model_product()

    order = place(uuid.uuid4(), (str(lamp.product_id), 1))

    assert order.total == Decimal("30.00")
    assert len(catalog.requests) == 2  # one retry of a transient failure, then the fallback


def test_the_catalog_circuit_opens_after_five_failures_and_calls_stop(catalog):
    catalog.answer_status = 500
    lamp = read_model_product()

    for _ in range(5):
        place(uuid.uuid4(), (str(lamp.product_id), 1))
    requests_while_closed = len(catalog.requests)
    place(uuid.uuid4(), (str(lamp.product_id), 1))

    assert requests_while_closed == 10
    assert len(catalog.requests) == 10  # the open circuit answered at once: the read model priced it
    assert Order.objects.count() == 6


def test_order_create_refuses_mixed_currencies(catalog):
    dollars = catalog.add(name="Pen", price="1.50")
    euros = catalog.add(name="Stylo", price="1.40", currency="EUR")

    with pytest.raises(DomainError) as caught:
        place(uuid.uuid4(), (dollars, 1), (euros, 1))

    assert caught.value.code == "currency_mismatch"
    assert Order.objects.count() == 0


def test_order_create_refuses_a_total_the_database_cannot_hold(catalog):
    gold = catalog.add(name="Gold", price="9999999999.99")

    with pytest.raises(DomainError) as caught:
        place(uuid.uuid4(), (gold, 2))

    assert caught.value.code == "order_too_large"


@pytest.mark.parametrize(
    "quantities",
    [[], [0], [1001], [1] * 51],
    ids=["no-lines", "zero", "too-many-units", "too-many-lines"],
)
def test_order_create_checks_its_lines_for_every_caller(catalog, quantities):
    lines = [(catalog.add(name="Pen", price="1.00"), quantity) for quantity in quantities]

    with pytest.raises(DomainError) as caught:
        place(uuid.uuid4(), *lines)

    assert caught.value.code == "validation_error"
    assert catalog.requests == []


def test_order_create_refuses_a_repeated_product(catalog):
    pen = catalog.add(name="Pen", price="1.00")

    with pytest.raises(DomainError) as caught:
        place(uuid.uuid4(), (pen, 1), (pen, 2))

    assert caught.value.code == "validation_error"


def test_order_create_writes_nothing_if_the_event_cannot_be_recorded(catalog, monkeypatch):
    pen = catalog.add(name="Pen", price="1.00")

    def broken_publish(*args, **kwargs):
        raise RuntimeError("outbox unavailable")

    monkeypatch.setattr(services, "publish_event", broken_publish)

    with pytest.raises(RuntimeError):
        place(uuid.uuid4(), (pen, 1))
    assert Order.objects.count() == 0
    assert OrderStatusChange.objects.count() == 0


# order_cancel (the customer's cancel; the saga's transitions are in test_handlers.py)


@pytest.mark.parametrize("status", ["pending", "awaiting_payment", "confirmed"])
def test_order_cancel_cancels_an_open_or_confirmed_order(catalog, status):
    order = place(uuid.uuid4(), (catalog.add(name="Pen", price="1.00"), 1))
    Order.objects.filter(id=order.id).update(status=status)

    cancelled = services.order_cancel(order_id=order.id)

    assert (cancelled.status, cancelled.status_reason) == ("cancelled", "customer_cancelled")
    assert outbox("order.cancelled")[0]["previous_status"] == status


def test_order_cancel_by_staff_is_staff_cancelled_and_names_who_in_the_history(catalog):
    order = place(uuid.uuid4(), (catalog.add(name="Pen", price="1.00"), 1))
    operator_id = uuid.uuid4()

    cancelled = services.order_cancel(order_id=order.id, actor_id=operator_id, by_staff=True)

    assert (cancelled.status, cancelled.status_reason) == ("cancelled", "staff_cancelled")
    assert outbox("order.cancelled")[0]["reason"] == "staff_cancelled"
    history = list(cancelled.history.order_by("at", "id").values_list("status", "reason", "actor_id"))
    assert history == [("pending", "", None), ("cancelled", "staff_cancelled", operator_id)]


@pytest.mark.parametrize("status", ["rejected", "cancelled"])
def test_order_cancel_refuses_a_finished_order(catalog, status):
    order = place(uuid.uuid4(), (catalog.add(name="Pen", price="1.00"), 1))
    Order.objects.filter(id=order.id).update(status=status)

    with pytest.raises(Conflict) as caught:
        services.order_cancel(order_id=order.id)

    assert caught.value.code == "order_not_cancellable"
    assert Order.objects.get(id=order.id).status == status
    assert outbox("order.cancelled") == []


# Idempotency


def claim(user_id, key="key-1", fingerprint="f" * 64):
    return services.idempotency_claim(user_id=user_id, key=key, fingerprint=fingerprint)


def test_idempotent_call_runs_once_and_replays_the_stored_response():
    user_id = uuid.uuid4()
    runs = []

    def run():
        runs.append(1)
        return StoredResponse(status=202, body={"id": "abc"})

    first = services.idempotent_call(user_id=user_id, key="k", fingerprint="a" * 64, run=run)
    second = services.idempotent_call(user_id=user_id, key="k", fingerprint="a" * 64, run=run)

    assert first == (StoredResponse(202, {"id": "abc"}), False)
    assert second == (StoredResponse(202, {"id": "abc"}), True)
    assert len(runs) == 1
    record = IdempotencyRecord.objects.get()
    assert (record.state, record.response_status, record.response_body) == ("completed", 202, {"id": "abc"})


def test_idempotency_claim_refuses_another_request_with_the_same_key():
    user_id = uuid.uuid4()
    claim(user_id, fingerprint="a" * 64)

    with pytest.raises(Unprocessable) as caught:
        claim(user_id, fingerprint="b" * 64)

    assert caught.value.code == "idempotency_key_reused"


def test_idempotency_claim_refuses_while_the_first_request_is_in_flight():
    user_id = uuid.uuid4()
    claim(user_id)

    with pytest.raises(Conflict) as caught:
        claim(user_id)

    assert caught.value.code == "idempotency_request_in_flight"


def test_idempotency_keys_belong_to_one_user():
    claim(uuid.uuid4())

    assert isinstance(claim(uuid.uuid4()), IdempotencyRecord)
    assert IdempotencyRecord.objects.count() == 2


def test_an_abandoned_in_flight_key_is_taken_over_and_the_first_request_loses(settings):
    settings.IDEMPOTENCY_LOCK_SECONDS = 60
    user_id = uuid.uuid4()
    abandoned = claim(user_id)
    IdempotencyRecord.objects.filter(pk=abandoned.pk).update(locked_at=timezone.now() - timedelta(seconds=61))

    taken_over = claim(user_id)

    assert taken_over.pk == abandoned.pk
    assert taken_over.locked_at > abandoned.locked_at
    # Should the first request still finish, its completion finds the record taken and rolls back.
    with pytest.raises(Conflict):
        services._idempotency_complete(record=abandoned, response=StoredResponse(202, {}))


def test_a_run_that_loses_its_key_rolls_back_what_it_wrote(catalog, monkeypatch):
    pen = catalog.add(name="Pen", price="1.00")
    user_id = uuid.uuid4()

    def run_while_someone_takes_the_key_over():
        order = place(user_id, (pen, 1))
        IdempotencyRecord.objects.update(locked_at=timezone.now() + timedelta(seconds=1))
        return StoredResponse(status=202, body={"id": str(order.id)})

    with pytest.raises(Conflict):
        services.idempotent_call(
            user_id=user_id, key="k", fingerprint="a" * 64, run=run_while_someone_takes_the_key_over
        )

    assert Order.objects.count() == 0
    assert OutboxEvent.objects.count() == 0


def test_a_run_that_fails_unexpectedly_frees_the_key():
    user_id = uuid.uuid4()

    def run():
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        services.idempotent_call(user_id=user_id, key="k", fingerprint="a" * 64, run=run)

    assert IdempotencyRecord.objects.count() == 0


def test_an_expired_key_may_be_used_for_a_new_request(settings):
    user_id = uuid.uuid4()
    old = claim(user_id, fingerprint="a" * 64)
    IdempotencyRecord.objects.filter(pk=old.pk).update(
        state=IdempotencyState.COMPLETED,
        response_status=202,
        response_body={},
        created_at=timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS + 1),
    )

    fresh = claim(user_id, fingerprint="b" * 64)

    assert isinstance(fresh, IdempotencyRecord)
    fresh.refresh_from_db()
    assert (fresh.state, fresh.request_fingerprint, fresh.response_body) == ("in_flight", "b" * 64, None)


def test_the_purge_task_deletes_records_older_than_a_day():
    now = timezone.now()
    for age_hours, key in ((25, "old"), (23, "recent")):
        IdempotencyRecord.objects.create(
            user_id=uuid.uuid4(),
            key=key,
            request_fingerprint="a" * 64,
            created_at=now - timedelta(hours=age_hours),
        )

    assert tasks.idempotency_purge() == 1

    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["recent"]
