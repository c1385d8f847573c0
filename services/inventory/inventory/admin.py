"""The operator's view: stock (changed only through the audited "adjust stock" action), reservations
with their lines, and the adjustment trail. Nothing here edits counts or statuses directly: that would
break the invariant on_hand + reserved + sold that only adjustments may change."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse

from inventory import services
from inventory.models import Reservation, ReservationLine, Stock, StockAdjustment
from shared.errors import DomainError


class ReadOnlyAdminMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


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


class StockAdjustmentInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = StockAdjustment
    fields = ("created_at", "delta", "on_hand_after", "reason", "actor_email", "actor_id")
    readonly_fields = fields
    extra = 0
    max_num = 0
    ordering = ("-created_at",)
    show_change_link = False


@admin.register(Stock)
class StockAdmin(admin.ModelAdmin):
    list_display = ("product_id", "sku", "on_hand", "reserved", "sold", "product_deleted_at", "updated_at")
    list_filter = (("product_deleted_at", admin.EmptyFieldListFilter),)
    search_fields = ("product_id", "sku")
    readonly_fields = (
        "product_id",
        "sku",
        "on_hand",
        "reserved",
        "sold",
        "product_deleted_at",
        "created_at",
        "updated_at",
    )
    inlines = [StockAdjustmentInline]
    actions = ["adjust_stock"]

    def has_add_permission(self, request):
        return False  # stock rows come from catalog's product.created

    def has_delete_permission(self, request, obj=None):
        return False  # reservations and the audit trail refer to them

    @admin.action(description="Adjust stock of the selected products (audited)", permissions=["change"])
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
        actor_email = request.user.email or request.user.get_username()
        for stock in queryset:
            try:
                stock = services.stock_adjust(
                    product_id=stock.product_id,
                    delta=delta,
                    reason=reason,
                    actor_id=f"admin:{request.user.pk}",
                    actor_email=actor_email,
                )
            except DomainError as exc:
                self.message_user(request, f"{stock}: {exc.message}", messages.ERROR)
            else:
                self.message_user(
                    request, f"{stock}: {delta:+d}, now {stock.on_hand} on hand.", messages.SUCCESS
                )


class ReservationLineInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = ReservationLine
    fields = ("product_id", "quantity")
    readonly_fields = fields
    extra = 0


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("order_id", "status", "failure_reason", "expires_at", "created_at", "updated_at")
    list_filter = ("status", "failure_reason")
    search_fields = ("order_id", "id")
    date_hierarchy = "created_at"
    readonly_fields = ("id", "order_id", "status", "failure_reason", "expires_at", "created_at", "updated_at")
    inlines = [ReservationLineInline]


@admin.register(StockAdjustment)
class StockAdjustmentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "stock", "delta", "on_hand_after", "reason", "actor_email")
    list_filter = ("created_at",)
    search_fields = ("stock__product_id", "stock__sku", "reason", "actor_email", "actor_id")
    readonly_fields = ("stock", "delta", "reason", "on_hand_after", "actor_id", "actor_email", "created_at")
    list_select_related = ("stock",)
