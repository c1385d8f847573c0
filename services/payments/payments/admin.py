from django.contrib import admin, messages

from payments import services
from payments.models import Payment


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    """Payments are a record of money moved at the provider: read-only, changed only by services."""

    list_display = (
        "order_id",
        "status",
        "amount",
        "currency",
        "customer_email",
        "failure_reason",
        "attempts",
        "refund_requested",
        "created_at",
    )
    list_filter = ("status", "failure_reason", "refund_requested", "charge_in_doubt")
    search_fields = ("order_id", "id", "customer_email", "provider_charge_id", "provider_refund_id")
    ordering = ("-created_at",)
    date_hierarchy = "created_at"
    # Every field but the card token, which is never shown, not even to staff.
    fields = [field.name for field in Payment._meta.fields if field.name != "payment_token"]
    actions = ["refund"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # view-only: money moves only through the actions below (which call services)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_refund_permission(self, request) -> bool:
        # Moving money needs more than the right to look: the model's change permission.
        return request.user.has_perm("payments.change_payment")

    @admin.action(description="Refund selected captured payments", permissions=["refund"])
    def refund(self, request, queryset):
        refunded = waiting = skipped = 0
        for payment in queryset:
            if payment.status != Payment.Status.CAPTURED:
                skipped += 1
                continue
            services.payment_request_refund(payment_id=payment.id)
            payment = services.payment_refund(payment_id=payment.id)
            if payment.status == Payment.Status.REFUNDED:
                refunded += 1
            else:
                waiting += 1
        if refunded:
            self.message_user(request, f"{refunded} payments refunded.", messages.SUCCESS)
        if waiting:
            self.message_user(
                request,
                f"{waiting} refunds could not be done now; they are retried automatically (see last error).",
                messages.WARNING,
            )
        if skipped:
            self.message_user(request, f"{skipped} payments skipped: only captured ones can be refunded.")
