from django.apps import AppConfig


class AdminUiConfig(AppConfig):
    name = "shared.admin_ui"
    label = "admin_ui"
    verbose_name = "Admin pages shared by every service"
