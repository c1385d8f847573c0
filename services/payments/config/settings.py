"""payments: charges and refunds at the payment provider, driven by the saga's events."""

from pathlib import Path

import environ

from shared.settings import service_settings

env = environ.Env()

# The safety net's period: a lost charge task, a crashed worker or a backoff all end up in this sweep.
payment_sweep_seconds = env.float("PAYMENT_SWEEP_SECONDS", default=1.0)

globals().update(
    service_settings(
        base_dir=Path(__file__).resolve().parent.parent,
        service="payments",
        apps=["payments"],
        extra_apps=["pgtrigger"],  # the ledger's append-only triggers (payments.models.PaymentEvent)
        downstreams=["payment_provider"],
        subscriptions={
            "inventory.reserved": "payments.handlers.on_inventory_reserved",
            "inventory.reservation_expired": "payments.handlers.on_inventory_reservation_expired",
            "order.cancelled": "payments.handlers.on_order_cancelled",
            "order.confirmed": "payments.handlers.on_order_confirmed",
            "order.rejected": "payments.handlers.on_order_rejected",
        },
        beat_schedule={
            "payments-retry-due": {"task": "payments.payments_retry_due", "schedule": payment_sweep_seconds},
        },
        extra={
            "PAYMENT_SWEEP_SECONDS": payment_sweep_seconds,
            # How long a payment may wait for an unavailable provider (capped by the reservation's expiry).
            "PAYMENT_DEADLINE_SECONDS": env.float("PAYMENT_DEADLINE_SECONDS", default=30.0),
            "PROVIDER_TIMEOUT_SECONDS": env.float("PROVIDER_TIMEOUT_SECONDS", default=2.0),
            "PROVIDER_BREAKER_RESET_SECONDS": env.float("PROVIDER_BREAKER_RESET_SECONDS", default=5.0),
            # Failed calls (each already retried) before the circuit opens.
            "PROVIDER_BREAKER_FAIL_MAX": env.int("PROVIDER_BREAKER_FAIL_MAX", default=5),
            # Its records in an order's saga timeline (GET /internal/v1/saga/<order_id>/, shared.saga).
            "SAGA_RECORDS": "payments.selectors.saga_records",
        },
    )
)
