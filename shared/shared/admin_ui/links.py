"""Links from another service's id to that object's page in its own admin.

Every admin is served on one origin by the gateway (`/admin/<service>/...`, docs/admin.md), so a
relative link from payments' admin to `/admin/orders/orders/order/<id>/change/` opens the order in
orders' admin, with the same single sign-on.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import quote
from django.utils.html import format_html

from shared.admin_ui.nav import admin_path


def admin_link(object_id, *, service: str, model: str, text: str | None = None) -> str | None:
    """An `<a>` to the change page of `object_id` in `service`'s admin; None when there is no id.

    `model` is `<app_label>.<model_name>` as Django names it there (e.g. `orders.order`, and
    `messaging.outboxevent` for a service's outbox); `object_id` is that model's primary key.
    """
    if object_id in (None, ""):
        return None
    app_label, model_name = model.split(".")
    url = f"{admin_path(service)}{app_label}/{model_name}/{quote(str(object_id))}/change/"
    return format_html('<a href="{}">{}</a>', url, text if text is not None else object_id)


def admin_link_field(field: str, *, service: str, model: str, description: str | None = None):
    """A ModelAdmin (or inline) column showing `field` as an `admin_link`: put it in `list_display`,
    or in `fields` and `readonly_fields`, instead of `field`.

        order_link = admin_link_field("order_id", service="orders", model="orders.order")
    """

    @admin.display(description=description or field.replace("_", " "), ordering=field)
    def column(model_admin, obj):
        return admin_link(getattr(obj, field), service=service, model=model)

    return column
