from django.urls import path

from catalog.api import views

urlpatterns = [
    path("api/v1/products/", views.ProductListApi.as_view(), name="product-list"),
    path("api/v1/products/<uuid:pk>/", views.ProductDetailApi.as_view(), name="product-detail"),
    path("api/v1/categories/", views.CategoryListApi.as_view(), name="category-list"),
    path("api/v2/products/", views.ProductListV2Api.as_view(), name="product-list-v2"),
    path("api/v2/products/<uuid:pk>/", views.ProductDetailV2Api.as_view(), name="product-detail-v2"),
]
