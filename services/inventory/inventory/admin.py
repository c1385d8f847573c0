"""The operator's view: stock (changed only through the audited "adjust stock" action), reservations
with their lines, and the adjustment trail. Nothing here edits counts or statuses directly: that would
break the invariant on_hand + reserved + sold that only adjustments may change. Every page is view-only;
other services' ids (products, orders, staff) link to their own admins."""

import uuid

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse

from inventory import services
from inventory.models import Reservation, ReservationLine, Stock, StockAdjustment
from shared.admin_ui.actors import identity_user_id
from shared.admin_ui.changelists import LagTolerantChangeListMixin
from shared.admin_ui.links import admin_link, admin_link_field
from shared.admin_ui.readonly import ViewOnlyAdminMixin
from shared.web.errors import DomainError

product_link = admin_link_field(
    "product_id", service="catalog", model="catalog.product", description="product"
)
order_link = admin_link_field("order_id", service="orders", model="orders.order", description="order")


@admin.display(description="actor")
def actor_link(model_admin, adjustment: StockAdjustment):
    """identity's user id as a link to the staff member; older rows' `admin:<n>` and local logins as text."""
    try:
        uuid.UUID(adjustment.actor_id)
    except ValueError:
        return adjustment.actor_id or None
    return admin_link(adjustment.actor_id, service="identity", model="identity.user")


def admin_actor_id(user) -> str:
    """Who adjusts in the admin, as the audit trail names actors: identity's user id of the staff member
    (the SSO shadow user's), or `local:<username>` for a local debugging login, which stands for nobody
    at identity."""
    identity_id = identity_user_id(user)
    return str(identity_id) if identity_id else f"local:{user.get_username()}"


class AdjustStockForm(forms.Form):
    delta = forms.IntegerField(
        min_value=-services.MAX_ADJUSTMENT,
        max_value=services.MAX_ADJUSTMENT,
        help_text="Units to add (positive) or remove (negative) from on hand, for each selected product.",
    )
    reason = forms.CharField(
        max_length=255, help_text="Recorded in the audit trail, e.g. 'delivery 2024-118'."
    )

    def clean_delta(self):
        delta = self.cleaned_data["delta"]
        if delta == 0:
            raise forms.ValidationError("The change must not be zero.")
        return delta


class StockAdjustmentInline(ViewOnlyAdminMixin, admin.TabularInline):
    model = StockAdjustment
    fields = ("created_at", "delta", "on_hand_after", "reason", "actor_email", "actor_link")
    readonly_fields = fields
    actor_link = actor_link
    extra = 0
    max_num = 0
    ordering = ("-created_at",)
    show_change_link = False


@admin.register(Stock)
class StockAdmin(LagTolerantChangeListMixin, ViewOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "__str__",
        "product_link",
        "on_hand",
        "reserved",
        "sold",
        "product_deleted_at",
        "updated_at",
    )
    list_filter = (("product_deleted_at", admin.EmptyFieldListFilter),)
    search_fields = ("product_id", "sku")
    fields = (
        "product_link",
        "sku",
        "on_hand",
        "reserved",
        "sold",
        "product_deleted_at",
        "created_at",
        "updated_at",
    )
    # Stock rows come from catalog's product.created and are never deleted (reservations and the audit
    # trail refer to them); their counts change only through the action below.
    readonly_fields = fields
    inlines = [StockAdjustmentInline]
    actions = ["adjust_stock"]
    product_link = product_link

    def has_adjust_permission(self, request) -> bool:
        # The model's change permission, which the view-only pages otherwise never grant.
        return request.user.has_perm("inventory.change_stock")

    @admin.action(description="Adjust stock of the selected products (audited)", permissions=["adjust"])
    def adjust_stock(self, request, queryset):
        """Two steps: the first POST shows the delta/reason form, the second (with `apply`) adjusts."""
        form = AdjustStockForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            self._apply_adjustment(request, queryset, **form.cleaned_data)
            return None  # back to the change list, with the messages
        return TemplateResponse(
            request,
            "admin/inventory/stock/adjust_stock.html",
            {
                **self.admin_site.each_context(request),
                "title": "Adjust stock",
                "opts": self.model._meta,
                "form": form,
                "stocks": queryset,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            },
        )

    def _apply_adjustment(self, request, queryset, *, delta: int, reason: str) -> None:
        actor_id = admin_actor_id(request.user)
        actor_email = request.user.email or request.user.get_username()
        for stock in queryset:
            try:
                stock = services.stock_adjust(
                    product_id=stock.product_id,
                    delta=delta,
                    reason=reason,
                    actor_id=actor_id,
                    actor_email=actor_email,
                )
            except DomainError as exc:
                self.message_user(request, f"{stock}: {exc.message}", messages.ERROR)
            else:
                self.message_user(
                    request, f"{stock}: {delta:+d}, now {stock.on_hand} on hand.", messages.SUCCESS
                )


class ReservationLineInline(ViewOnlyAdminMixin, admin.TabularInline):
    model = ReservationLine
    fields = ("product_link", "quantity")
    readonly_fields = fields
    extra = 0
    product_link = product_link


@admin.register(Reservation)
class ReservationAdmin(LagTolerantChangeListMixin, ViewOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "order_link", "status", "failure_reason", "expires_at", "updated_at")
    list_display_links = ("created_at",)
    list_filter = ("status", "failure_reason")
    search_fields = ("order_id", "id")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    fields = ("id", "order_link", "status", "failure_reason", "expires_at", "created_at", "updated_at")
    readonly_fields = fields
    inlines = [ReservationLineInline]
    order_link = order_link


@admin.register(StockAdjustment)
class StockAdjustmentAdmin(LagTolerantChangeListMixin, ViewOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "stock", "delta", "on_hand_after", "reason", "actor_email", "actor_link")
    list_filter = ("created_at",)
    search_fields = ("stock__product_id", "stock__sku", "reason", "actor_email", "actor_id")
    fields = ("stock", "delta", "reason", "on_hand_after", "actor_link", "actor_email", "created_at")
    readonly_fields = fields
    list_select_related = ("stock",)
    actor_link = actor_link
