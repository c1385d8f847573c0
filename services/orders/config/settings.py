"""orders: carts (Redis), orders and their status (the saga's authority), the product read model."""

from pathlib import Path

import environ

from shared.settings import service_settings

env = environ.Env()

globals().update(
    service_settings(
        base_dir=Path(__file__).resolve().parent.parent,
        service="orders",
        apps=["orders"],
        # catalog prices orders; every service answers its part of a saga for the timeline in the admin.
        downstreams=["catalog", "identity", "inventory", "payments", "notifications"],
        service_client=True,  # reads the other services' part of a saga (the timeline)
        subscriptions={
            "product.created": "orders.handlers.on_product_changed",
            "product.updated": "orders.handlers.on_product_changed",
            "product.deleted": "orders.handlers.on_product_deleted",
            "inventory.reserved": "orders.handlers.on_inventory_reserved",
            "inventory.reservation_failed": "orders.handlers.on_inventory_reservation_failed",
            "inventory.reservation_expired": "orders.handlers.on_inventory_reservation_expired",
            "payment.succeeded": "orders.handlers.on_payment_succeeded",
            "payment.failed": "orders.handlers.on_payment_failed",
            "payment.refunded": "orders.handlers.on_payment_refunded",
        },
        beat_schedule={"idempotency-purge": {"task": "orders.idempotency_purge", "schedule": 3600.0}},
        # Order.status_reason and the history's reason share one choice set: one name in the OpenAPI schema.
        openapi={"ENUM_NAME_OVERRIDES": {"StatusReasonEnum": "orders.models.StatusReason"}},
        extra={
            "CART_TTL_SECONDS": env.int("CART_TTL_SECONDS", default=7 * 24 * 3600),
            # Stripe keeps idempotency keys for 24 hours; older records are purged and the key may be reused.
            "IDEMPOTENCY_KEY_TTL_SECONDS": env.int("IDEMPOTENCY_KEY_TTL_SECONDS", default=24 * 3600),
            # An in-flight record older than this belongs to a request that died; a retry may take it over.
            "IDEMPOTENCY_LOCK_SECONDS": env.int("IDEMPOTENCY_LOCK_SECONDS", default=60),
            # Its records in an order's saga timeline (GET /internal/v1/saga/<order_id>/, shared.saga).
            "SAGA_RECORDS": "orders.selectors.saga_records",
            # An order not terminal this long after it was placed is stuck: the timeline says so, and
            # orders exports it as saga_stuck_order_age_seconds (alert SagaStuck). A saga normally ends
            # within a second.
            "SAGA_STUCK_SECONDS": env.int("SAGA_STUCK_SECONDS", default=120),
        },
    )
)
