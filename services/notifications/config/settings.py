"""notifications: the e-mails the platform sends, one recorded notification per event and kind."""

from pathlib import Path

import environ

from shared.settings import service_settings

env = environ.Env()

base = service_settings(
    base_dir=Path(__file__).resolve().parent.parent,
    service="notifications",
    apps=["notifications"],
    subscriptions={
        "user.registered": "notifications.handlers.on_user_registered",
        "order.confirmed": "notifications.handlers.on_order_confirmed",
        "order.cancelled": "notifications.handlers.on_order_cancelled",
        "order.rejected": "notifications.handlers.on_order_rejected",
        "payment.refunded": "notifications.handlers.on_payment_refunded",
    },
    beat_schedule={
        # The safety net under the after-commit task: a lost task or a failed send is retried here.
        "notifications-send-pending": {
            "task": "notifications.notifications_send_pending",
            "schedule": env.float("NOTIFICATION_SWEEP_SECONDS", default=5.0),
        },
    },
    extra={
        # A notification still failing after this many sends is marked failed (an operator can resend it).
        "NOTIFICATION_MAX_ATTEMPTS": env.int("NOTIFICATION_MAX_ATTEMPTS", default=5),
        # The sweep leaves a new row to its own task this long, and waits this long (doubling) between
        # retries.
        "NOTIFICATION_RETRY_SECONDS": env.float("NOTIFICATION_RETRY_SECONDS", default=5.0),
        # Its records in an order's saga timeline (GET /internal/v1/saga/<order_id>/, shared.saga).
        "SAGA_RECORDS": "notifications.selectors.saga_records",
    },
)
globals().update(
    base,
    # Django's file backend can append several e-mails to one file (see notifications.mail): locally we
    # write one file per e-mail. Any other configured backend (SMTP in compose) is kept as it is.
    EMAIL_BACKEND=(
        "notifications.mail.FileEmailBackend"
        if base["EMAIL_BACKEND"] == "django.core.mail.backends.filebased.EmailBackend"
        else base["EMAIL_BACKEND"]
    ),
)
