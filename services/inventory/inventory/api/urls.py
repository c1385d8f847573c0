from django.urls import path

from inventory.api import views

urlpatterns = [
    path("api/v1/stock/", views.StockListApi.as_view(), name="stock-list"),
    path("api/v1/stock/<uuid:product_id>/", views.StockDetailApi.as_view(), name="stock-detail"),
    path(
        "api/v1/stock/<uuid:product_id>/adjustments/",
        views.StockAdjustmentListApi.as_view(),
        name="stock-adjustments",
    ),
]
