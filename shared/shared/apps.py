from django.apps import AppConfig


class SharedConfig(AppConfig):
    """The shared package as a Django app: commands every service has (e.g. `manage.py routes`)."""

    name = "shared"
    verbose_name = "Platform"
