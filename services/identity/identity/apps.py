from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class IdentityConfig(AppConfig):
    name = "identity"
    verbose_name = "Identity"
    default_auto_field = "django.db.models.BigAutoField"


class IdentityAdminConfig(admin_apps.AdminConfig):
    """identity's admin is the login page of every admin and issues the sign-on cookie."""

    default = False  # named in INSTALLED_APPS in place of django.contrib.admin (identity's settings)
    default_site = "identity.admin_site.IssuerAdminSite"
