from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from payments import selectors
from payments.api.serializers import PaymentDetailSerializer, PaymentFilterSerializer, PaymentSerializer
from shared.web.serializers import query_parameters


def _visible_to(user) -> str | None:
    """Staff see every payment (None); a customer only their own."""
    return None if getattr(user, "is_staff", False) else str(user.id)


class PaymentListApi(ListAPIView):
    serializer_class = PaymentSerializer

    @extend_schema(
        summary="List payments (the caller's own; staff: everyone's)",
        parameters=[OpenApiParameter("order_id", OpenApiTypes.UUID, description="One order's")],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        filters = query_parameters(PaymentFilterSerializer, self.request)
        return selectors.payment_list_lag_tolerant(
            user_id=_visible_to(self.request.user), order_id=filters.get("order_id")
        )


class PaymentDetailApi(APIView):
    @extend_schema(summary="One payment with its refunds", responses=PaymentDetailSerializer)
    def get(self, request, pk):
        payment = selectors.payment_get_lag_tolerant(payment_id=pk, user_id=_visible_to(request.user))
        return Response(PaymentDetailSerializer(payment).data)
