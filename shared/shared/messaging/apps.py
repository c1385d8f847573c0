from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "shared.messaging"
    label = "messaging"
    verbose_name = "Messaging (outbox and inbox)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from shared.messaging import partitions
        from shared.messaging.metrics import OutboxCollector

        post_migrate.connect(partitions.create_after_migrate, sender=self)
        from shared.observability.metrics import register_scrape_collector

        register_scrape_collector(OutboxCollector())
