"""The admin sites: identity's is the one login page and sets the SSO cookie; the others defer to it.

`apps.IssuerAdminConfig` / `apps.ConsumerAdminConfig` make these the default `admin.site`, so every
`@admin.register` and the dead-letter page land on them unchanged.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.http import HttpResponseRedirect
from django.template import engines
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache

from shared.admin_sso import tokens

logger = logging.getLogger(__name__)

_LOGOUT_CONFIRM_TEMPLATE = """{% extends "admin/base_site.html" %}
{% block content %}
<p>Log out of every service's admin?</p>
<form method="post">{% csrf_token %}
<div class="submit-row"><input type="submit" value="Log out" class="default"></div>
</form>
{% endblock %}
"""


class _ServiceAdminSite(admin.AdminSite):
    """Names the service in every admin page's header and title."""

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)
        service = settings.SERVICE_NAME
        self.site_header = f"Order platform: {service}"
        self.site_title = f"{service} admin"
        self.index_title = f"{service} administration"
        self.site_url = None  # the services have no public site to go back to


class IssuerAdminSite(_ServiceAdminSite):
    """identity's admin: a staff login here sets the cookie every other admin accepts."""

    def _next_url(self, request) -> str:
        target = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME, "")
        safe = url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
        return target if safe else reverse("admin:index", current_app=self.name)

    def _with_cookie(self, response, request):
        tokens.set_cookie(response, request, tokens.sso_token_issue(user=request.user))
        logger.info("admin SSO cookie issued", extra={"user_id": str(request.user.pk)})
        return response

    @method_decorator(never_cache)
    def login(self, request, extra_context=None):
        if request.method == "GET" and self.has_permission(request):
            # Already logged in here (another admin sent the visitor back): a fresh cookie, then onwards.
            return self._with_cookie(HttpResponseRedirect(self._next_url(request)), request)
        response = super().login(request, extra_context)
        if request.method == "POST" and response.status_code == 302 and self.has_permission(request):
            return self._with_cookie(response, request)
        return response

    @method_decorator(never_cache)
    def logout(self, request, extra_context=None):
        if request.method == "GET":
            # Other admins' "Log out" lands here (the admin logs out by POST, so this asks first).
            context = {**self.each_context(request), "title": "Log out", "has_permission": False}
            template = engines["django"].from_string(_LOGOUT_CONFIRM_TEMPLATE)
            return TemplateResponse(request, template, context)
        raw = tokens.cookie_value(request)
        if raw:
            tokens.sso_token_revoke(raw)
        response = super().logout(request, extra_context)
        tokens.delete_cookie(response)
        return response


class ConsumerAdminSite(_ServiceAdminSite):
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
