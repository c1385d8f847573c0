from rest_framework import serializers

from payments.models import FailureReason, Payment


class PaymentSerializer(serializers.ModelSerializer):
    """What a customer may see: never the card token, never provider internals."""

    class Meta:
        model = Payment
        fields = ["id", "order_id", "amount", "currency", "status", "created_at"]
        read_only_fields = fields


class BlankAsNullChoiceField(serializers.ChoiceField):
    """A choice the model stores as "" when there is none, answered as null: "" is not one of the
    choices, so a client checking the value against the schema's enum would reject it."""

    def to_representation(self, value):
        return None if value == "" else super().to_representation(value)


class PaymentDetailSerializer(PaymentSerializer):
    failure_reason = BlankAsNullChoiceField(
        choices=FailureReason.choices,
        allow_null=True,
        read_only=True,
        help_text="Why the payment failed (or was voided, when there is a reason); null otherwise.",
    )

    class Meta(PaymentSerializer.Meta):
        fields = [*PaymentSerializer.Meta.fields, "failure_reason", "updated_at"]
        read_only_fields = fields


class PaymentFilterSerializer(serializers.Serializer):
    order_id = serializers.UUIDField(required=False)
