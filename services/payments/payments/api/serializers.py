from rest_framework import serializers

from payments.models import Payment


class PaymentSerializer(serializers.ModelSerializer):
    """What a customer may see: never the card token, never provider internals."""

    class Meta:
        model = Payment
        fields = ["id", "order_id", "amount", "currency", "status", "created_at"]
        read_only_fields = fields


class PaymentDetailSerializer(PaymentSerializer):
    class Meta(PaymentSerializer.Meta):
        fields = [*PaymentSerializer.Meta.fields, "failure_reason", "updated_at"]
        read_only_fields = fields


class PaymentFilterSerializer(serializers.Serializer):
    order_id = serializers.UUIDField(required=False)
