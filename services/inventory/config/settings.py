"""inventory: stock per product, reservations with expiry, and the staff's audited adjustments."""

from pathlib import Path

import environ

from shared.settings import service_settings

_env = environ.Env()

# How often beat sweeps held reservations past their deadline (a cheap indexed query).
_reservation_sweep_seconds = _env.float("RESERVATION_SWEEP_SECONDS", default=1.0)

globals().update(
    service_settings(
        base_dir=Path(__file__).resolve().parent.parent,
        service="inventory",
        apps=["inventory"],
        subscriptions={
            "product.created": "inventory.handlers.on_product_created",
            "product.deleted": "inventory.handlers.on_product_deleted",
            "order.created": "inventory.handlers.on_order_created",
            "order.confirmed": "inventory.handlers.on_order_confirmed",
            "order.cancelled": "inventory.handlers.on_order_cancelled",
            "payment.failed": "inventory.handlers.on_payment_failed",
        },
        beat_schedule={
            "reservations-expire": {
                "task": "inventory.reservations_expire",
                "schedule": _reservation_sweep_seconds,
            },
        },
        extra={
            # How long a reservation waits for the payment before it is announced as expired.
            "RESERVATION_TTL_SECONDS": _env.int("RESERVATION_TTL_SECONDS", default=900),
            "RESERVATION_SWEEP_SECONDS": _reservation_sweep_seconds,
            # Its records in an order's saga timeline (GET /internal/v1/saga/<order_id>/, shared.saga).
            "SAGA_RECORDS": "inventory.selectors.saga_records",
        },
    )
)
