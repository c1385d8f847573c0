from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from inventory.models import Stock, StockAdjustment
from inventory.services import MAX_ADJUSTMENT
from shared.web.serializers import InputSerializer


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


@extend_schema_field(
    {"type": "integer", "minimum": -MAX_ADJUSTMENT, "maximum": MAX_ADJUSTMENT, "not": {"enum": [0]}}
)
class NonZeroIntegerField(serializers.IntegerField):
    """A change of stock: never zero (validate_delta says why)."""


class StockAdjustmentRequestSerializer(InputSerializer):
    delta = NonZeroIntegerField(min_value=-MAX_ADJUSTMENT, max_value=MAX_ADJUSTMENT)
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
