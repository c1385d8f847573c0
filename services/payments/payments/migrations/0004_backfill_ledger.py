"""Give every payment that exists before the ledger a stream: one `backfilled` event holding its row.

Faithful to the row, not to its history: folding the event gives back every field exactly (times,
attempt count, ids, flags), so nothing is lost on upgrade; the individual attempts, captures and
refunds that led there were never recorded and are not invented. The event's time is the row's
`updated_at`. Runs again harmlessly: payments that already have a stream are skipped.
"""

from django.db import migrations

# The row's fields as they were when the ledger came in. Frozen here (not read from the model) because
# the fold's `backfilled` event (payments.ledger) reads exactly these keys, forever.
SNAPSHOT_FIELDS = (
    "order_id", "reservation_id", "user_id", "customer_email", "amount", "currency", "payment_token",
    "status", "failure_reason", "last_error", "provider_charge_id", "provider_refund_id", "attempts",
    "next_attempt_at", "deadline_at", "expires_at", "void_requested", "charge_in_doubt",
    "refund_requested", "refund_requested_by", "created_at",
)  # fmt: skip
BATCH = 500


def _json_value(value):
    if value is None or isinstance(value, bool | int | str):
        return value
    if hasattr(value, "isoformat"):  # datetimes
        return value.isoformat()
    if hasattr(value, "quantize"):  # the amount, as numeric(12, 2) keeps it
        return f"{value:.2f}"
    return str(value)  # UUIDs


def backfill_streams(apps, schema_editor):
    Payment = apps.get_model("payments", "Payment")
    PaymentEvent = apps.get_model("payments", "PaymentEvent")
    db = schema_editor.connection.alias
    with_stream = PaymentEvent.objects.using(db).values("payment_id")
    pending = Payment.objects.using(db).exclude(pk__in=with_stream).order_by("pk")
    for payment in pending.iterator(chunk_size=BATCH):
        PaymentEvent.objects.using(db).create(
            payment_id=payment.pk,
            version=1,
            type="backfilled",
            data={field: _json_value(getattr(payment, field)) for field in SNAPSHOT_FIELDS},
            occurred_at=payment.updated_at,
        )
        Payment.objects.using(db).filter(pk=payment.pk).update(version=1)


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0003_ledger"),
    ]

    operations = [
        # Backwards: nothing to undo here (0003's reversal drops the ledger table).
        migrations.RunPython(backfill_streams, migrations.RunPython.noop),
    ]
