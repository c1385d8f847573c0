from django.urls import include, path

from shared.urls import service_urlpatterns

urlpatterns = service_urlpatterns(path("", include("payments.api.urls")))

handler404 = "shared.errors.json_not_found"
handler500 = "shared.errors.json_server_error"
