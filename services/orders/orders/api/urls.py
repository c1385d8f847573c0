from django.urls import path

from orders.api import views

urlpatterns = [
    path("api/v1/orders/", views.OrderListCreateApi.as_view(), name="order-list"),
    path("api/v1/orders/<uuid:order_id>/", views.OrderDetailApi.as_view(), name="order-detail"),
    path("api/v1/orders/<uuid:order_id>/cancel/", views.OrderCancelApi.as_view(), name="order-cancel"),
    path("api/v1/cart/", views.CartApi.as_view(), name="cart"),
    path("api/v1/cart/items/", views.CartItemsApi.as_view(), name="cart-items"),
    path("api/v1/cart/items/<uuid:product_id>/", views.CartItemApi.as_view(), name="cart-item"),
    path("api/v1/cart/checkout/", views.CartCheckoutApi.as_view(), name="cart-checkout"),
]
