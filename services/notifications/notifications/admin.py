from django.contrib import admin, messages

from notifications import services
from notifications.models import Notification
from shared.admin_ui.changelists import LagTolerantChangeListMixin
from shared.admin_ui.links import admin_link_field
from shared.admin_ui.readonly import ViewOnlyAdminMixin

# Other services' ids, shown as links into their admins.
LINKED_FIELDS = {"user_id": "user_link", "order_id": "order_link"}


@admin.register(Notification)
class NotificationAdmin(LagTolerantChangeListMixin, ViewOnlyAdminMixin, admin.ModelAdmin):
    """The log is the record of what customers were told: view-only, never edited nor deleted. Resending
    records a new copy."""

    list_display = (
        "kind",
        "recipient",
        "order_link",
        "status",
        "attempts",
        "created_at",
        "sent_at",
        "event_type",
    )
    list_filter = ("kind", "status", "event_type", ("resend_of", admin.EmptyFieldListFilter))
    search_fields = ("recipient", "event_id", "id", "subject", "order_id")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    fields = [LINKED_FIELDS.get(field.name, field.name) for field in Notification._meta.fields]
    readonly_fields = fields
    actions = ["resend", "send_pending_now"]

    user_link = admin_link_field("user_id", service="identity", model="identity.user", description="user")
    order_link = admin_link_field("order_id", service="orders", model="orders.order", description="order")

    def has_send_permission(self, request) -> bool:
        # Sending e-mail to customers needs the model's change permission, not only the right to look.
        return request.user.has_perm("notifications.change_notification")

    @admin.action(
        description="Resend selected notifications (a new copy is sent and recorded)", permissions=["send"]
    )
    def resend(self, request, queryset):
        selected = list(queryset)
        sent = services.notification_resend(notifications=selected)
        level = messages.SUCCESS if sent == len(selected) else messages.WARNING
        unsent = len(selected) - sent
        retry_note = (
            f" {unsent} not sent now: see the copies' last error (pending copies are retried)."
            if unsent
            else ""
        )
        self.message_user(request, f"{sent} of {len(selected)} notifications resent.{retry_note}", level)

    @admin.action(description="Send selected pending notifications now", permissions=["send"])
    def send_pending_now(self, request, queryset):
        pending = list(queryset.filter(status=Notification.Status.PENDING).values_list("id", flat=True))
        sent = sum(services.notification_send(notification_id=notification_id) for notification_id in pending)
        self.message_user(request, f"{sent} of {len(pending)} pending notifications sent.", messages.INFO)
