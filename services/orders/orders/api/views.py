"""orders' REST API: thin views over selectors and services."""

from __future__ import annotations

import uuid

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orders import selectors, services
from orders.api.idempotency import HEADER as IDEMPOTENCY_HEADER
from orders.api.idempotency import idempotent_response
from orders.api.serializers import (
    CartItemSerializer,
    CartSerializer,
    OrderCreateSerializer,
    OrderListQuerySerializer,
    OrderSerializer,
    PaymentDetailsSerializer,
)
from shared.web.schema import error_response
from shared.web.serializers import query_parameters

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    IDEMPOTENCY_HEADER,
    str,
    location=OpenApiParameter.HEADER,
    required=False,
    description="Retry-safe placement: the same key and body replay the first response (kept 24 h).",
)
# Placing an order with an Idempotency-Key: the key in flight (409) or reused with another body (422).
IDEMPOTENCY_ERRORS = {409: error_response(409), 422: error_response(422)}


def _user_id(request: Request) -> uuid.UUID:
    try:
        return uuid.UUID(str(request.user.id))
    except ValueError as exc:
        raise AuthenticationFailed("The token does not name a user.") from exc


def _is_staff(request: Request) -> bool:
    return bool(getattr(request.user, "is_staff", False))


def _customer_email(request: Request) -> str:
    return str(request.auth.get("email", "") or "")


def _placed(order) -> Response:
    return Response(OrderSerializer(order).data, status=status.HTTP_202_ACCEPTED)


class OrderListCreateApi(ListAPIView):
    serializer_class = OrderSerializer

    @extend_schema(
        summary="List orders (the caller's own; staff: everyone's), newest first",
        parameters=[OrderListQuerySerializer],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        status_filter = query_parameters(OrderListQuerySerializer, self.request).get("status")
        return selectors.order_list_lag_tolerant(
            user_id=_user_id(self.request), is_staff=_is_staff(self.request), status=status_filter
        )

    @extend_schema(
        summary="Place an order: 202, then the saga confirms or rejects it",
        request=OrderCreateSerializer,
        responses={202: OrderSerializer, **IDEMPOTENCY_ERRORS},
        parameters=[IDEMPOTENCY_PARAMETER],
    )
    def post(self, request):
        return idempotent_response(request, user_id=_user_id(request), handler=lambda: self._place(request))

    def _place(self, request) -> Response:
        serializer = OrderCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        order = services.order_create(
            user_id=_user_id(request),
            customer_email=_customer_email(request),
            lines=[services.LineRequest(**line) for line in data["items"]],
            payment_token=data["payment_token"],
            shipping_address=data["shipping_address"],
        )
        return _placed(order)


class OrderDetailApi(APIView):
    @extend_schema(summary="One order with its lines and status history", responses=OrderSerializer)
    def get(self, request, order_id):
        order = selectors.order_get_lag_tolerant(
            order_id=order_id, user_id=_user_id(request), is_staff=_is_staff(request)
        )
        return Response(OrderSerializer(order).data)


class OrderCancelApi(APIView):
    @extend_schema(
        summary="Cancel an order (a confirmed one is refunded and its stock returned)",
        request=None,
        responses={
            202: OrderSerializer,
            409: error_response(409, "The order is already rejected or cancelled."),
        },
    )
    def post(self, request, order_id):
        user_id, is_staff = _user_id(request), _is_staff(request)
        order = selectors.order_get(order_id=order_id, user_id=user_id, is_staff=is_staff)
        # Staff cancelling a customer's order is a staff cancel; their own order they cancel as customers.
        services.order_cancel(
            order_id=order.id, actor_id=user_id, by_staff=is_staff and order.user_id != user_id
        )
        order = selectors.order_get(order_id=order.id, user_id=_user_id(request), is_staff=_is_staff(request))
        return Response(OrderSerializer(order).data, status=status.HTTP_202_ACCEPTED)


class CartApi(APIView):
    @extend_schema(summary="The caller's cart", responses=CartSerializer)
    def get(self, request):
        return Response(CartSerializer(selectors.cart_get(user_id=_user_id(request))).data)

    @extend_schema(summary="Empty the cart", responses={204: None})
    def delete(self, request):
        services.cart_clear(user_id=_user_id(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class CartItemsApi(APIView):
    @extend_schema(
        summary="Put a product in the cart (sets its quantity)",
        request=CartItemSerializer,
        responses=CartSerializer,
    )
    def post(self, request):
        serializer = CartItemSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        cart = services.cart_set_item(user_id=_user_id(request), **serializer.validated_data)
        return Response(CartSerializer(cart).data)


class CartItemApi(APIView):
    @extend_schema(summary="Remove a product from the cart", responses={204: None})
    def delete(self, request, product_id):
        services.cart_remove_item(user_id=_user_id(request), product_id=product_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CartCheckoutApi(APIView):
    @extend_schema(
        summary="Place an order from the cart's contents (the cart is emptied)",
        request=PaymentDetailsSerializer,
        responses={202: OrderSerializer, **IDEMPOTENCY_ERRORS},
        parameters=[IDEMPOTENCY_PARAMETER],
    )
    def post(self, request):
        return idempotent_response(
            request, user_id=_user_id(request), handler=lambda: self._checkout(request)
        )

    def _checkout(self, request) -> Response:
        serializer = PaymentDetailsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        order = services.cart_checkout(
            user_id=_user_id(request), customer_email=_customer_email(request), **serializer.validated_data
        )
        return _placed(order)
