from drf_spectacular.utils import extend_schema
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from notifications import selectors
from notifications.api.serializers import NotificationDetailSerializer, NotificationSerializer


class NotificationListApi(ListAPIView):
    """The caller's notifications, newest first (staff: everyone's)."""

    serializer_class = NotificationSerializer

    @extend_schema(summary="List notifications (the caller's own; staff: everyone's)")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        user = self.request.user
        return selectors.notification_list_lag_tolerant(user_id=user.id, is_staff=user.is_staff)


class NotificationDetailApi(APIView):
    @extend_schema(summary="One notification with its message", responses=NotificationDetailSerializer)
    def get(self, request, pk):
        notification = selectors.notification_get_lag_tolerant(
            notification_id=pk, user_id=request.user.id, is_staff=request.user.is_staff
        )
        return Response(NotificationDetailSerializer(notification).data)
