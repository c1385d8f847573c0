from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory import selectors, services
from inventory.api.serializers import (
    StaffStockSerializer,
    StockAdjustmentRequestSerializer,
    StockAdjustmentSerializer,
    StockSerializer,
)
from shared.auth.api import IsStaff
from shared.web.schema import error_response


class StockListApi(ListAPIView):
    permission_classes = [IsStaff]
    serializer_class = StaffStockSerializer

    @extend_schema(summary="Stock of every product (staff)")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return selectors.stock_list()


class StockDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(summary="A product's stock: on hand, reserved, available", responses=StockSerializer)
    def get(self, request, product_id):
        return Response(StockSerializer(selectors.stock_get(product_id=product_id)).data)


class StockAdjustmentListApi(ListAPIView):
    """GET: the product's adjustments, newest first. POST: adjust the units on hand (audited)."""

    permission_classes = [IsStaff]
    serializer_class = StockAdjustmentSerializer

    @extend_schema(summary="A product's stock adjustments, newest first (staff)")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return selectors.stock_adjustment_list(product_id=self.kwargs["product_id"])

    @extend_schema(
        summary="Adjust the units on hand (staff, audited)",
        request=StockAdjustmentRequestSerializer,
        responses={
            201: StockSerializer,
            409: error_response(409, "Fewer units on hand than the delta removes."),
        },
    )
    def post(self, request, product_id):
        serializer = StockAdjustmentRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        stock = services.stock_adjust(
            product_id=product_id,
            actor_id=str(request.user.id),
            actor_email=request.auth.get("email", "") if request.auth else "",
            **serializer.validated_data,
        )
        return Response(StockSerializer(stock).data, status=status.HTTP_201_CREATED)
