from django.urls import path

from payments.api import views

urlpatterns = [
    path("api/v1/payments/", views.PaymentListApi.as_view(), name="payment-list"),
    path("api/v1/payments/<uuid:pk>/", views.PaymentDetailApi.as_view(), name="payment-detail"),
]
