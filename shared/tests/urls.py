from django.urls import path

from shared.web.urls import handler400, handler403, handler404, handler500, service_urlpatterns  # noqa: F401
from tests import api

urlpatterns = service_urlpatterns(
    path("api/echo/", api.EchoApi.as_view()),
    path("api/accounts/", api.AccountsApi.as_view()),
    path("api/v1/entries/", api.EntryApi.as_view()),
    path("api/v1/accounts/", api.AccountListApi.as_view()),
    path("api/forbidden/", api.forbidden),
    path("api/broken/", api.broken),
)
