from shared.urls import service_urlpatterns

urlpatterns = service_urlpatterns()
