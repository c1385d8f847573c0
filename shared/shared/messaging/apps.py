from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "shared.messaging"
    label = "messaging"
    verbose_name = "Messaging (outbox and inbox)"
    default_auto_field = "django.db.models.BigAutoField"
