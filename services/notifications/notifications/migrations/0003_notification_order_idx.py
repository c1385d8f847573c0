"""An index for one order's notifications (the saga timeline), built without blocking the table's writes.

A plain CREATE INDEX stops every insert into the table while it scans it: CONCURRENTLY builds it beside
the traffic, outside a transaction (hence `atomic = False`).
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("notifications", "0002_notification_order_id"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="notification",
            index=models.Index(
                condition=models.Q(("order_id__isnull", False)), fields=["order_id"], name="notification_order_idx"
            ),
        ),
    ]
