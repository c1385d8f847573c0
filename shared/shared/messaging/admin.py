"""The outbox and inbox, browsable by operators; stuck outbox rows can be republished."""

from django.contrib import admin, messages

from shared.messaging import deadletters, relay
from shared.messaging.models import InboxMessage, OutboxEvent


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):
    list_display = ("event_type", "id", "created_at", "published_at", "attempts", "last_error")
    list_filter = ("event_type", ("published_at", admin.EmptyFieldListFilter))
    search_fields = ("id", "event_type")
    readonly_fields = [field.name for field in OutboxEvent._meta.fields]
    actions = ["republish"]

    @admin.action(description="Publish selected pending events now")
    def republish(self, request, queryset):
        ids = list(queryset.filter(published_at__isnull=True).values_list("id", flat=True))
        published = relay.relay_batch(ids=ids, limit=len(ids) or 1) if ids else 0
        self.message_user(request, f"{published} of {len(ids)} pending events published.", messages.INFO)

    def has_add_permission(self, request):
        return False


@admin.register(InboxMessage)
class InboxMessageAdmin(admin.ModelAdmin):
    list_display = ("consumer", "event_type", "event_id", "received_at")
    list_filter = ("consumer", "event_type")
    search_fields = ("event_id",)
    readonly_fields = ("consumer", "event_type", "event_id", "received_at")

    def has_add_permission(self, request):
        return False


deadletters.install_admin(admin.site)
