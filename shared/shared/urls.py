"""The URLs every service exposes besides its own API."""

from django.contrib import admin
from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from shared import health, metrics


def service_urlpatterns(*api) -> list:
    """`urlpatterns` of a service's `config/urls.py`: health, admin, OpenAPI schema, metrics, its API."""
    return [
        path("health/live", health.live, name="health-live"),
        path("health/ready", health.ready, name="health-ready"),
        path("admin/", admin.site.urls),
        path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
        # Our export, not django_prometheus.urls: it adds the state read at scrape time (shared.metrics).
        path("metrics", metrics.metrics_view, name="prometheus-django-metrics"),
        *api,
    ]
