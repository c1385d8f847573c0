"""identity's admin site: the one login page of every admin, and the issuer of the sign-on cookie.

A staff login here starts an admin sign-in (identity.models.SignIn) kept in identity's session, and sets
the `admin_sso` cookie for it (shared.auth.admin_sso). Coming back to the login page while signed in (another
admin sent the visitor here) mints a fresh cookie for the same sign-in. Logging out ends the sign-in, so
every cookie minted for it, including older copies, is refused everywhere; so does anything else that
ends it (deactivation, a new password), and identity's own session ends with it.
"""

from __future__ import annotations

import logging

from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth import logout as session_logout
from django.http import HttpResponseRedirect
from django.template import engines
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache

from identity import services
from identity.models import SignIn
from shared.auth.admin_sso import tokens as cookie
from shared.auth.admin_sso.sites import ServiceAdminSite

logger = logging.getLogger(__name__)

SESSION_KEY = "admin_sign_in"
_LOGOUT_CONFIRM_TEMPLATE = """{% extends "admin/base_site.html" %}
{% block content %}
<p>Log out of every service's admin?</p>
<form method="post">{% csrf_token %}
<div class="submit-row"><input type="submit" value="Log out" class="default"></div>
</form>
{% endblock %}
"""


class IssuerAdminSite(ServiceAdminSite):
    def has_permission(self, request) -> bool:
        """Staff with an open admin sign-in: when it has ended (logout elsewhere, deactivation, expiry),
        identity's session ends too, and the visitor logs in again."""
        if not super().has_permission(request):
            return False
        sign_in_id = request.session.get(SESSION_KEY)
        if sign_in_id and SignIn.objects.filter(pk=sign_in_id, ended_at__isnull=True).exists():
            return True
        if sign_in_id:
            session_logout(request)
            return False
        return True  # logged in before sign-ins were recorded, or by a test client: gets one at login

    def _next_url(self, request) -> str:
        target = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME, "")
        safe = url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
        return target if safe else reverse("admin:index", current_app=self.name)

    def _with_cookie(self, response, request):
        sign_in, token = services.admin_sign_in(
            user=request.user, sign_in_id=request.session.get(SESSION_KEY)
        )
        request.session[SESSION_KEY] = str(sign_in.pk)
        cookie.set_cookie(response, request, token)
        logger.info(
            "admin SSO cookie issued", extra={"user_id": str(request.user.pk), "sign_in": str(sign_in.pk)}
        )
        return response

    @method_decorator(never_cache)
    def login(self, request, extra_context=None):
        if request.method == "GET" and self.has_permission(request):
            # Already signed in here (another admin sent the visitor back): a fresh cookie, then onwards.
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
        sign_in_id = request.session.get(SESSION_KEY)
        if sign_in_id:
            services.sign_in_end(sign_in_id=sign_in_id, reason=SignIn.EndReason.LOGOUT)
        response = super().logout(request, extra_context)
        cookie.delete_cookie(response)
        return response
