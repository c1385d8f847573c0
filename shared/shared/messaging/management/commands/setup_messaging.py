from celery import current_app
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from shared.messaging import subscriptions, topology


class Command(BaseCommand):
    help = "Declare this service's exchanges, queues and bindings on the broker (idempotent)."

    def handle(self, *args, **options):
        broken = subscriptions.check_handlers_importable()
        if broken:
            raise CommandError(f"EVENT_SUBSCRIPTIONS names handlers that do not import: {', '.join(broken)}")
        event_types = subscriptions.subscribed_types()
        with current_app.connection_for_write() as connection:
            topology.declare(connection, settings.SERVICE_NAME, event_types, settings.EVENTS_DELIVERY_LIMIT)
        bound = ", ".join(event_types) or "no event types"
        self.stdout.write(f"{topology.events_queue_name(settings.SERVICE_NAME)} bound to {bound}")
