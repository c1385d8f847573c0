"""Replace `django.contrib.admin` in INSTALLED_APPS with one of these (shared.settings does)."""

from django.contrib.admin.apps import AdminConfig


class IssuerAdminConfig(AdminConfig):
    """identity: its admin login issues the SSO cookie."""

    default_site = "shared.admin_sso.sites.IssuerAdminSite"


class ConsumerAdminConfig(AdminConfig):
    """Every other service: its admin accepts the SSO cookie and sends visitors to identity's login."""

    default_site = "shared.admin_sso.sites.ConsumerAdminSite"
