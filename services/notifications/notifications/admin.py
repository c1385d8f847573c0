from django.contrib import admin, messages

from notifications import services
from notifications.models import Notification


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("kind", "recipient", "status", "attempts", "created_at", "sent_at", "event_type")
    list_filter = ("kind", "status", "event_type", ("resend_of", admin.EmptyFieldListFilter))
    search_fields = ("recipient", "event_id", "id", "subject")
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in Notification._meta.fields]
    actions = ["resend", "send_pending_now"]

    @admin.action(description="Resend selected notifications (a new copy is sent and recorded)")
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

    @admin.action(description="Send selected pending notifications now")
    def send_pending_now(self, request, queryset):
        pending = list(queryset.filter(status=Notification.Status.PENDING).values_list("id", flat=True))
        sent = sum(services.notification_send(notification_id=notification_id) for notification_id in pending)
        self.message_user(request, f"{sent} of {len(pending)} pending notifications sent.", messages.INFO)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        # The log is the record of what customers were told: it is kept.
        return False
