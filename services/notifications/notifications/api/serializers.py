from rest_framework import serializers

from notifications.models import Notification


class NotificationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = ["id", "kind", "subject", "status", "created_at"]
        read_only_fields = fields


class NotificationDetailSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = [
            "id",
            "kind",
            "subject",
            "status",
            "created_at",
            "recipient",
            "body",
            "event_id",
            "event_type",
            "sent_at",
        ]
        read_only_fields = fields
