"""The URLs every service exposes besides its own API."""

from django.conf import settings
from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from shared.observability import metrics
from shared.saga.api import SagaPartApi
from shared.web import health
from shared.web.openapi import PublicSchemaView

# Django's error handlers, in the contract's error shape (shared.web.errors). Django looks for them in the
# root URLconf, so each service's config/urls.py imports these four names.
handler400 = "shared.web.errors.bad_request"
handler403 = "shared.web.errors.permission_denied"
handler404 = "shared.web.errors.not_found"
handler500 = "shared.web.errors.server_error"


def service_urlpatterns(*api) -> list:
    """`urlpatterns` of a service's `config/urls.py`: health, admin, OpenAPI schema, metrics, its part of
    an order's saga (`internal/`, for other services: shared.saga), its API.

    The admin is at `admin/<service>/`, the path the gateway exposes it under, so every URL it builds
    is right through the gateway and on the service's own port; plain `admin/` redirects there.
    """
    return [
        path("health/live", health.live, name="health-live"),
        path("health/ready", health.ready, name="health-ready"),
        path(settings.ADMIN_URL_PATH, admin.site.urls),
        path("admin/", RedirectView.as_view(pattern_name="admin:index"), name="admin-moved"),
        path("api/schema/", PublicSchemaView.as_view(), name="schema"),
        # Our export, not django_prometheus.urls: it adds the state read at scrape time (service_registry).
        path("metrics", metrics.metrics_view, name="prometheus-django-metrics"),
        path("internal/v1/saga/<uuid:order_id>/", SagaPartApi.as_view(), name="internal-saga-part"),
        *api,
    ]
