"""Replace `django.contrib.admin` in INSTALLED_APPS with this (shared.settings does; identity has its own)."""

from django.contrib.admin.apps import AdminConfig


class ConsumerAdminConfig(AdminConfig):
    """Every service but identity: its admin accepts the SSO cookie and sends visitors to identity's login."""

    default_site = "shared.auth.admin_sso.sites.ConsumerAdminSite"
