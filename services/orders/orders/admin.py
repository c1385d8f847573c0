"""The operator's view of orders: view-only pages; statuses change only through services (the cancel
action calls them, recorded as a staff cancel with the operator's identity user id). Each order has a
saga timeline page (orders.timeline): its journey across every service, and where it waits."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from orders import services
from orders.models import IdempotencyRecord, Order, OrderItem, OrderStatusChange, ProductReadModel
from orders.timeline import order_timeline
from shared.admin_ui import confirm
from shared.admin_ui.actors import identity_user_id
from shared.admin_ui.changelists import LagTolerantChangeListMixin
from shared.admin_ui.links import admin_link_field
from shared.admin_ui.readonly import ViewOnlyAdminMixin
from shared.web.errors import Conflict

product_link = admin_link_field(
    "product_id", service="catalog", model="catalog.product", description="product"
)
user_link = admin_link_field("user_id", service="identity", model="identity.user", description="user")


class OrderItemInline(ViewOnlyAdminMixin, admin.TabularInline):
    model = OrderItem
    extra = 0
    fields = ("product_link", "name", "unit_price", "quantity")
    readonly_fields = fields
    product_link = product_link


class OrderStatusChangeInline(ViewOnlyAdminMixin, admin.TabularInline):
    model = OrderStatusChange
    extra = 0
    fields = ("at", "status", "reason", "actor_link")
    readonly_fields = fields
    verbose_name_plural = "history"
    actor_link = admin_link_field("actor_id", service="identity", model="identity.user", description="by")


TIMELINE_URL_NAME = "orders_order_timeline"


@admin.register(Order)
class OrderAdmin(LagTolerantChangeListMixin, ViewOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "customer_email",
        "status",
        "status_reason",
        "total",
        "currency",
        "created_at",
        "timeline_link",
    )
    list_filter = ("status", "status_reason", "created_at")
    search_fields = ("customer_email",)  # and the exact order id, see get_search_results
    search_help_text = "An order id, or part of the customer's e-mail."
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    # Everything is read-only, the payment token is not shown at all.
    fields = (
        "id",
        "user_link",
        "customer_email",
        "status",
        "status_reason",
        "total",
        "currency",
        "shipping_address",
        "created_at",
        "updated_at",
        "confirmed_at",
        "terminal_at",
        "refunded_at",
    )
    readonly_fields = fields
    inlines = [OrderItemInline, OrderStatusChangeInline]
    actions = ["cancel_orders"]
    user_link = user_link

    def get_urls(self):
        # Before the default ones, whose `<path:object_id>/` would take the timeline's path.
        timeline = path(
            "<uuid:object_id>/timeline/",
            self.admin_site.admin_view(self.timeline_view),
            name=TIMELINE_URL_NAME,
        )
        return [timeline, *super().get_urls()]

    @admin.display(description="saga")
    def timeline_link(self, order: Order) -> str:
        return format_html(
            '<a href="{}">timeline</a>', reverse(f"admin:{TIMELINE_URL_NAME}", args=[order.pk])
        )

    def timeline_view(self, request, object_id):
        """The order's saga across every service (view-only: it changes nothing anywhere)."""
        order = self.get_object(request, str(object_id))
        if order is None:
            raise Http404("No such order.")
        if not self.has_view_permission(request, order):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": f"Saga timeline of order {order.id}",
            "opts": self.model._meta,
            "original": order,
            "timeline": order_timeline(order=order),
            "stuck_seconds": settings.SAGA_STUCK_SECONDS,
        }
        return TemplateResponse(request, "admin/orders/order/timeline.html", context)

    def has_cancel_permission(self, request) -> bool:
        # The model's change permission, which the view-only pages otherwise never grant.
        return request.user.has_perm("orders.change_order")

    def get_search_results(self, request, queryset, search_term):
        matches, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        try:
            order_id = uuid.UUID(search_term.strip())
        except ValueError:
            return matches, may_have_duplicates
        return matches | queryset.filter(id=order_id), may_have_duplicates

    @admin.action(
        description="Cancel selected orders (refund and stock return follow)", permissions=["cancel"]
    )
    def cancel_orders(self, request, queryset):
        """Two steps, like Django's delete: cancelling a confirmed order refunds the customer."""
        if not confirm.confirmed(request):
            return confirm.action_confirmation(
                self, request, queryset,
                action="cancel_orders",
                title="Cancel orders",
                question=f"Cancel these {queryset.count()} orders? A confirmed one is refunded and its stock "
                "returned; a finished one (cancelled, rejected) stays as it is.",
                items=[f"{order.id} ({order.status}, {order.total} {order.currency})" for order in queryset],
                confirm_label="Yes, cancel them",
            )  # fmt: skip
        actor_id = identity_user_id(request.user)
        cancelled, refused = 0, []
        for order_id in queryset.values_list("id", flat=True):
            try:
                services.order_cancel(order_id=order_id, actor_id=actor_id, by_staff=True)
                cancelled += 1
            except Conflict as exc:
                refused.append(f"{order_id}: {exc.message}")
        if cancelled:
            self.message_user(request, f"{cancelled} orders cancelled.", messages.SUCCESS)
        for line in refused:
            self.message_user(request, line, messages.WARNING)


@admin.register(ProductReadModel)
class ProductReadModelAdmin(LagTolerantChangeListMixin, ViewOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("sku", "name", "product_link", "price", "currency", "is_active", "updated_at")
    list_display_links = ("sku",)
    list_filter = ("is_active",)
    search_fields = ("sku", "name")
    fields = ("product_link", "sku", "name", "price", "currency", "is_active", "updated_at")
    readonly_fields = fields
    product_link = product_link


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(LagTolerantChangeListMixin, ViewOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("key", "user_link", "state", "response_status", "created_at")
    list_filter = ("state",)
    search_fields = ("key",)
    user_link = user_link
