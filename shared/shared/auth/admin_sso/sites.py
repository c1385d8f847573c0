"""The admin sites: every service's names the service; the consumers' send visitors to identity's login.

`apps.ConsumerAdminConfig` (identity: identity.apps.IdentityAdminConfig) makes them the default
`admin.site`, so every `@admin.register` and the dead-letter page land on them unchanged.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache

logger = logging.getLogger(__name__)


class ServiceAdminSite(admin.AdminSite):
    """Names the service in every admin page's header and title."""

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)
        service = settings.SERVICE_NAME
        self.site_header = f"Order platform: {service}"
        self.site_title = f"{service} admin"
        self.index_title = f"{service} administration"
        self.site_url = None  # the services have no public site to go back to


class ConsumerAdminSite(ServiceAdminSite):
    """Any other service's admin: visitors log in at identity; logging out ends the SSO session there.

    `?local=1` on the login page keeps the service's own password login (accounts made with
    `createsuperuser`) for debugging a service directly on its port.
    """

    @method_decorator(never_cache)
    def login(self, request, extra_context=None):
        if request.GET.get("local") or request.method == "POST":
            return super().login(request, extra_context)
        target = request.GET.get(REDIRECT_FIELD_NAME) or reverse("admin:index", current_app=self.name)
        query = urlencode({REDIRECT_FIELD_NAME: target})
        return HttpResponseRedirect(f"{settings.ADMIN_SSO['LOGIN_URL']}?{query}")

    @method_decorator(never_cache)
    def logout(self, request, extra_context=None):
        from django.contrib.auth import logout

        if request.method == "POST":  # the admin's logout form, CSRF-checked
            logout(request)  # a local (?local=1) login, if any
        return HttpResponseRedirect(settings.ADMIN_SSO["LOGOUT_URL"])
