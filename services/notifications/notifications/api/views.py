from drf_spectacular.utils import extend_schema
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from notifications import selectors
from notifications.api.serializers import NotificationDetailSerializer, NotificationSerializer


class NotificationListApi(ListAPIView):
    """The caller's notifications, newest first (staff: everyone's)."""

    serializer_class = NotificationSerializer

    def get_queryset(self):
        user = self.request.user
        return selectors.notification_list(user_id=user.id, is_staff=user.is_staff)


class NotificationDetailApi(APIView):
    @extend_schema(responses=NotificationDetailSerializer)
    def get(self, request, pk):
        notification = selectors.notification_get(
            notification_id=pk, user_id=request.user.id, is_staff=request.user.is_staff
        )
        return Response(NotificationDetailSerializer(notification).data)
