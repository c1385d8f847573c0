import json

from django.contrib import admin, messages

from payments import services
from payments.models import Payment, PaymentEvent
from shared.admin_ui import confirm, redaction
from shared.admin_ui.actors import identity_user_id
from shared.admin_ui.changelists import LagTolerantChangeListMixin
from shared.admin_ui.links import admin_link_field
from shared.admin_ui.readonly import ViewOnlyAdminMixin
from shared.web.errors import Conflict

# Other services' ids, shown as links into their admins.
LINKED_FIELDS = {
    "order_id": "order_link",
    "user_id": "user_link",
    "reservation_id": "reservation_link",
    "refund_requested_by": "refund_requested_by_link",
}


class PaymentEventInline(ViewOnlyAdminMixin, admin.TabularInline):
    """The payment's ledger stream, oldest first: what happened, when, with what (the row is its fold)."""

    model = PaymentEvent
    verbose_name = "ledger event"
    verbose_name_plural = (
        "ledger: the history of this payment, oldest first (the fields above are computed from it)"
    )
    fields = ("version", "type", "at", "details")
    readonly_fields = fields
    ordering = ("version",)
    extra = 0
    can_delete = False

    @admin.display(description="occurred at")
    def at(self, event: PaymentEvent) -> str:
        return event.occurred_at.isoformat()  # to the microsecond: events can be that close

    @admin.display(description="data")
    def details(self, event: PaymentEvent) -> str:
        # A card token recorded by `requested` is never shown, not even to staff.
        return json.dumps(redaction.redact(event.data), sort_keys=True)


@admin.register(Payment)
class PaymentAdmin(LagTolerantChangeListMixin, ViewOnlyAdminMixin, admin.ModelAdmin):
    """Payments are a record of money moved at the provider: view-only, changed only by services."""

    list_display = (
        "created_at",
        "order_link",
        "status",
        "amount",
        "currency",
        "customer_email",
        "failure_reason",
        "attempts",
        "refund_requested",
    )
    list_display_links = ("created_at",)
    list_filter = ("status", "failure_reason", "refund_requested", "charge_in_doubt")
    search_fields = ("order_id", "id", "customer_email", "provider_charge_id", "provider_refund_id")
    ordering = ("-created_at",)
    date_hierarchy = "created_at"
    # Every field but the card token, which is never shown, not even to staff.
    fields = [
        LINKED_FIELDS.get(field.name, field.name)
        for field in Payment._meta.fields
        if field.name not in redaction.SECRET_FIELDS
    ]
    readonly_fields = fields
    inlines = [PaymentEventInline]
    actions = ["refund"]

    order_link = admin_link_field("order_id", service="orders", model="orders.order", description="order")
    user_link = admin_link_field("user_id", service="identity", model="identity.user", description="user")
    reservation_link = admin_link_field(
        "reservation_id", service="inventory", model="inventory.reservation", description="reservation"
    )
    refund_requested_by_link = admin_link_field(
        "refund_requested_by", service="identity", model="identity.user", description="refund requested by"
    )

    def has_refund_permission(self, request) -> bool:
        # Moving money needs more than the right to look: the model's change permission.
        return request.user.has_perm("payments.change_payment")

    @admin.action(description="Refund selected captured payments…", permissions=["refund"])
    def refund(self, request, queryset):
        """Two steps, like "Delete selected": the payments that will be refunded, then Confirm."""
        payments = list(queryset)
        captured = [payment for payment in payments if payment.status == Payment.Status.CAPTURED]
        refundable = [payment for payment in captured if not payment.refund_requested]
        waiting, skipped = len(captured) - len(refundable), len(payments) - len(captured)
        if not confirm.confirmed(request):
            return confirm.action_confirmation(
                self,
                request,
                queryset,
                action="refund",
                title="Refund payments",
                question=(
                    f"Refund these {len(refundable)} captured payments? The money goes back to the "
                    "customers' cards; the orders stay as they are."
                    if refundable
                    else "None of the selected payments can be refunded now."
                ),
                items=[_describe(payment) for payment in refundable],
                confirm_label="Yes, refund them",
                notes=_refund_notes(waiting=waiting, skipped=skipped),
            )
        requested_by = identity_user_id(request.user)
        requested = 0
        for payment in refundable:
            try:
                services.payment_request_refund(payment_id=payment.id, requested_by=requested_by)
            except Conflict:  # no longer captured since the confirmation page was shown
                skipped += 1
            else:
                requested += 1
        if requested:
            # The refund runs in payments' worker right after this request (payment.refunded follows):
            # the payment is still captured when this page is answered.
            self.message_user(
                request,
                f"Refund requested for {requested} payments. Each one shows as refunded when the provider "
                "has confirmed it, normally within seconds; one the provider refuses stays captured, "
                "with its answer under “last error”.",
                messages.SUCCESS,
            )
        for note in _refund_notes(waiting=waiting, skipped=skipped):
            self.message_user(request, note, messages.WARNING)


def _describe(payment: Payment) -> str:
    who = f" ({payment.customer_email})" if payment.customer_email else ""
    return f"{payment.amount} {payment.currency} for order {payment.order_id}{who}"


def _refund_notes(*, waiting: int, skipped: int) -> list[str]:
    notes = []
    if waiting:
        notes.append(
            f"{waiting} payments already have a refund requested; they are waiting for the provider."
        )
    if skipped:
        notes.append(f"{skipped} payments skipped: only captured ones can be refunded.")
    return notes
