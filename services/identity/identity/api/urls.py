from django.urls import path

from identity.api import views

urlpatterns = [
    path("api/v1/auth/register/", views.RegisterApi.as_view(), name="auth-register"),
    path("api/v1/auth/token/", views.TokenObtainApi.as_view(), name="auth-token"),
    path("api/v1/auth/token/refresh/", views.TokenRefreshApi.as_view(), name="auth-token-refresh"),
    path("api/v1/auth/logout/", views.LogoutApi.as_view(), name="auth-logout"),
    path("api/v1/auth/me/", views.MeApi.as_view(), name="auth-me"),
    path("api/v1/users/", views.UserListApi.as_view(), name="user-list"),
    path("api/v1/users/<uuid:pk>/", views.UserDetailApi.as_view(), name="user-detail"),
    path(".well-known/jwks.json", views.JwksApi.as_view(), name="jwks"),
    # For the platform's services only: never routed by the gateway.
    path("internal/v1/oauth/token/", views.ServiceTokenApi.as_view(), name="internal-service-token"),
]
