"""What orders' API accepts (JSON types checked, not coerced: shared.web.serializers) and answers."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from orders.models import Order, OrderItem, OrderStatus, OrderStatusChange
from orders.services import MAX_LINES, MAX_QUANTITY
from shared.web.serializers import InputSerializer

ADDRESS_REQUIRED_KEYS = ("line1", "city", "postal_code", "country")
ADDRESS_MAX_KEYS = 20
ADDRESS_MAX_VALUE_LENGTH = 200


@extend_schema_field(
    {
        "type": "object",
        "required": list(ADDRESS_REQUIRED_KEYS),
        "properties": {key: {"type": "string", "minLength": 1} for key in ADDRESS_REQUIRED_KEYS},
        "additionalProperties": {"type": "string", "maxLength": ADDRESS_MAX_VALUE_LENGTH},
    }
)
class ShippingAddressField(serializers.Field):
    """An object of strings with at least line1, city, postal_code and country (other keys kept)."""

    default_error_messages = {"invalid": "Expected an object with line1, city, postal_code and country."}

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail("invalid")
        if len(data) > ADDRESS_MAX_KEYS:
            raise serializers.ValidationError(f"An address has at most {ADDRESS_MAX_KEYS} parts.")
        errors = {}
        for key in ADDRESS_REQUIRED_KEYS:
            if not isinstance(data.get(key), str) or not data[key].strip():
                errors[key] = "This field is required (a non-empty string)."
        for key, value in data.items():
            if key in errors:
                continue
            if not isinstance(value, str):
                errors[key] = "Must be a string."
            elif len(value) > ADDRESS_MAX_VALUE_LENGTH or len(key) > 50:
                errors[key] = f"At most {ADDRESS_MAX_VALUE_LENGTH} characters."
        if errors:
            raise serializers.ValidationError(errors)
        return {key: value.strip() for key, value in data.items()}

    def to_representation(self, value):
        return value


class LineSerializer(InputSerializer):
    product_id = serializers.UUIDField()
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY)


class PaymentDetailsSerializer(InputSerializer):
    payment_token = serializers.CharField(max_length=100)
    shipping_address = ShippingAddressField()


class OrderCreateSerializer(PaymentDetailsSerializer):
    items = LineSerializer(many=True, allow_empty=False, min_length=1, max_length=MAX_LINES)

    def validate_items(self, items):
        product_ids = [item["product_id"] for item in items]
        duplicates = sorted({str(pid) for pid in product_ids if product_ids.count(pid) > 1})
        if duplicates:
            raise serializers.ValidationError(
                f"Each product may appear once; repeated: {', '.join(duplicates)}."
            )
        return items


class CartItemSerializer(LineSerializer):
    pass


class OrderItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrderItem
        fields = ["product_id", "name", "unit_price", "quantity"]
        read_only_fields = fields


class StatusChangeSerializer(serializers.ModelSerializer):
    # identity's user id of who made the change (the customer, or staff); null for the saga's own moves.
    actor = serializers.UUIDField(source="actor_id", read_only=True, allow_null=True)

    class Meta:
        model = OrderStatusChange
        fields = ["status", "reason", "at", "actor"]
        read_only_fields = fields


class OrderSerializer(serializers.ModelSerializer):
    """The order as the contract shows it; never the payment token."""

    items = OrderItemSerializer(many=True, read_only=True)
    history = StatusChangeSerializer(many=True, read_only=True)

    class Meta:
        model = Order
        fields = [
            "id",
            "status",
            "status_reason",
            "items",
            "total",
            "currency",
            "created_at",
            "updated_at",
            "history",
        ]
        read_only_fields = fields


class OrderListQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=OrderStatus.choices, required=False)


class CartLineSerializer(serializers.Serializer):
    product_id = serializers.UUIDField(read_only=True)
    quantity = serializers.IntegerField(read_only=True)


class CartSerializer(serializers.Serializer):
    items = CartLineSerializer(many=True, read_only=True, source="lines")
    expires_at = serializers.DateTimeField(read_only=True, allow_null=True)
