from django.urls import path

from notifications.api import views

urlpatterns = [
    path("api/v1/notifications/", views.NotificationListApi.as_view(), name="notification-list"),
    path(
        "api/v1/notifications/<uuid:pk>/", views.NotificationDetailApi.as_view(), name="notification-detail"
    ),
]
