"""The indexes on the new order_id columns, built without blocking writes.

A plain CREATE INDEX holds a lock that stops every insert into the table while it scans it, and the
inbox and outbox are written by every event: CONCURRENTLY builds them beside the traffic (outside a
transaction, hence `atomic = False`). The columns are new, so the partial indexes start nearly empty.
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("messaging", "0002_order_and_correlation"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="inboxmessage",
            index=models.Index(
                condition=models.Q(("order_id__isnull", False)), fields=["order_id"], name="inbox_order_idx"
            ),
        ),
        AddIndexConcurrently(
            model_name="outboxevent",
            index=models.Index(
                condition=models.Q(("order_id__isnull", False)), fields=["order_id"], name="outbox_order_idx"
            ),
        ),
    ]
