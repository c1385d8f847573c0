from rest_framework import serializers

from inventory.models import Stock, StockAdjustment
from inventory.services import MAX_ADJUSTMENT


class StockSerializer(serializers.ModelSerializer):
    """The public contract: `available` equals `on_hand` (reserved units are already out of it)."""

    available = serializers.IntegerField(read_only=True)

    class Meta:
        model = Stock
        fields = ["product_id", "on_hand", "reserved", "available"]
        read_only_fields = fields


class StaffStockSerializer(StockSerializer):
    class Meta(StockSerializer.Meta):
        fields = [*StockSerializer.Meta.fields, "sold", "sku", "product_deleted_at", "updated_at"]
        read_only_fields = fields


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer only: DRF would also take "5", 5.0 and true."""

    default_error_messages = {"invalid": "A whole number is required."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StockAdjustmentRequestSerializer(serializers.Serializer):
    delta = StrictIntegerField(min_value=-MAX_ADJUSTMENT, max_value=MAX_ADJUSTMENT)
    reason = serializers.CharField(max_length=255)

    def validate_delta(self, value: int) -> int:
        if value == 0:
            raise serializers.ValidationError("The change must not be zero.")
        return value


class StockAdjustmentSerializer(serializers.ModelSerializer):
    product_id = serializers.UUIDField(source="stock_id", read_only=True)

    class Meta:
        model = StockAdjustment
        fields = [
            "id",
            "product_id",
            "delta",
            "reason",
            "on_hand_after",
            "actor_id",
            "actor_email",
            "created_at",
        ]
        read_only_fields = fields
