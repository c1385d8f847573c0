from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "shared.messaging"
    label = "messaging"
    verbose_name = "Messaging (outbox and inbox)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from shared.messaging.metrics import OutboxCollector
        from shared.observability.metrics import register_scrape_collector

        register_scrape_collector(OutboxCollector())
