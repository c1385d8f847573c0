"""The operator's view of orders. Statuses are read-only here: they change only through services."""

from __future__ import annotations

import uuid

from django.contrib import admin, messages

from orders import services
from orders.models import IdempotencyRecord, Order, OrderItem, OrderStatusChange, ProductReadModel
from shared.errors import Conflict


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class OrderItemInline(ReadOnlyInline):
    model = OrderItem
    fields = ("product_id", "name", "unit_price", "quantity")
    readonly_fields = fields


class OrderStatusChangeInline(ReadOnlyInline):
    model = OrderStatusChange
    fields = ("at", "status", "reason")
    readonly_fields = fields
    verbose_name_plural = "history"


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("id", "customer_email", "status", "status_reason", "total", "currency", "created_at")
    list_filter = ("status", "status_reason", "created_at")
    search_fields = ("customer_email",)  # and the exact order id, see get_search_results
    search_help_text = "An order id, or part of the customer's e-mail."
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    # Everything is read-only, the payment token is not shown at all.
    fields = (
        "id",
        "user_id",
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

    def has_add_permission(self, request) -> bool:
        return False  # orders are placed by customers, through the saga

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # other services hold records of them

    def get_search_results(self, request, queryset, search_term):
        matches, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        try:
            order_id = uuid.UUID(search_term.strip())
        except ValueError:
            return matches, may_have_duplicates
        return matches | queryset.filter(id=order_id), may_have_duplicates

    @admin.action(
        description="Cancel selected orders (refund and stock return follow)", permissions=["change"]
    )
    def cancel_orders(self, request, queryset):
        cancelled, refused = 0, []
        for order_id in queryset.values_list("id", flat=True):
            try:
                services.order_cancel(order_id=order_id)
                cancelled += 1
            except Conflict as exc:
                refused.append(f"{order_id}: {exc.message}")
        if cancelled:
            self.message_user(request, f"{cancelled} orders cancelled.", messages.SUCCESS)
        for line in refused:
            self.message_user(request, line, messages.WARNING)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ProductReadModel)
class ProductReadModelAdmin(ReadOnlyAdmin):
    list_display = ("product_id", "sku", "name", "price", "currency", "is_active", "updated_at")
    list_filter = ("is_active",)
    search_fields = ("sku", "name")


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdmin):
    list_display = ("key", "user_id", "state", "response_status", "created_at")
    list_filter = ("state",)
    search_fields = ("key",)
