"""The outbox and inbox, browsable by operators, newest first; stuck outbox rows can be republished.

Both are view-only: deleting an unpublished outbox row loses its event, deleting an inbox row lets a
redelivered event apply twice, and editing either rewrites history. The only action is the safe one,
republishing (the relay marks a row published only after the broker confirmed it, and consumers'
inboxes absorb a duplicate).
"""

import json

from django.contrib import admin, messages
from django.utils.html import format_html

from shared.admin_ui import redaction
from shared.admin_ui.readonly import ViewOnlyAdminMixin
from shared.messaging import deadletters, relay
from shared.messaging.models import InboxMessage, OutboxEvent


@admin.register(OutboxEvent)
class OutboxEventAdmin(ViewOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("event_type", "id", "created_at", "published_at", "attempts", "last_error")
    list_filter = ("event_type", ("published_at", admin.EmptyFieldListFilter))
    search_fields = ("id", "event_type")
    ordering = ("-created_at",)
    # The envelope only as `envelope_shown`: card tokens travel in some events (shared.admin_ui.redaction).
    fields = (
        "id",
        "event_type",
        "version",
        "created_at",
        "published_at",
        "attempts",
        "last_error",
        "order_id",
        "correlation_id",
        "envelope_shown",
    )
    readonly_fields = fields
    actions = ["republish"]

    def has_republish_permission(self, request) -> bool:
        # The model's change permission, which this view-only page otherwise never grants.
        return request.user.has_perm(deadletters.CHANGE_PERMISSION)

    @admin.display(description="envelope")
    def envelope_shown(self, event: OutboxEvent) -> str:
        shown = json.dumps(redaction.redact(event.envelope), indent=2, sort_keys=True, default=str)
        return format_html("<pre>{}</pre>", shown)

    @admin.action(description="Publish selected pending events now", permissions=["republish"])
    def republish(self, request, queryset):
        ids = list(queryset.filter(published_at__isnull=True).values_list("id", flat=True))
        published = relay.relay_batch(ids=ids, limit=len(ids) or 1) if ids else 0
        self.message_user(request, f"{published} of {len(ids)} pending events published.", messages.INFO)


@admin.register(InboxMessage)
class InboxMessageAdmin(ViewOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("consumer", "event_type", "event_id", "occurred_at", "received_at", "deliveries")
    list_filter = ("consumer", "event_type")
    search_fields = ("event_id",)
    ordering = ("-received_at",)
    readonly_fields = (
        "consumer",
        "event_type",
        "event_id",
        "occurred_at",
        "received_at",
        "deliveries",
        "order_id",
        "correlation_id",
    )


deadletters.install_admin(admin.site)
