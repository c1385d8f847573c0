from django.urls import include, path

from shared.web.urls import handler400, handler403, handler404, handler500, service_urlpatterns  # noqa: F401

urlpatterns = service_urlpatterns(path("", include("catalog.api.urls")))
