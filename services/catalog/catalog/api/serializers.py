from decimal import Decimal

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from catalog import services
from catalog.models import CURRENCY, Category, Product
from catalog.selectors import ORDERINGS
from shared.web.errors import DomainError
from shared.web.serializers import InputSerializer

MAX_IDS = 100
MAX_INITIAL_STOCK = 1_000_000


# Reads


class CategorySerializer(serializers.ModelSerializer):
    class Meta:
        model = Category
        fields = ["name", "slug"]
        read_only_fields = fields


class ProductSerializer(serializers.ModelSerializer):
    """v1: `price` is a string ("12.50") next to a top-level `currency`."""

    category = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Product
        fields = ["id", "sku", "name", "description", "category", "price", "currency", "is_active"]
        read_only_fields = fields


class MoneySerializer(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()


class ProductV2Serializer(serializers.ModelSerializer):
    """v2: `price` is {"amount": "12.50", "currency": "USD"}; no top-level `currency`."""

    category = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    price = serializers.SerializerMethodField()

    class Meta:
        model = Product
        fields = ["id", "sku", "name", "description", "category", "price", "is_active"]
        read_only_fields = fields

    def get_price(self, product: Product) -> MoneySerializer:
        return MoneySerializer({"amount": product.price, "currency": product.currency}).data


UUID_PATTERN = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


# Comma-separated UUIDs, white space and empty parts ignored (validate_ids reads them so).
@extend_schema_field(
    {
        "type": "string",
        "maxLength": MAX_IDS * 37,
        "pattern": rf"^[\s,]*{UUID_PATTERN}(?:\s*,[\s,]*{UUID_PATTERN})*[\s,]*$",
    }
)
class IdListField(serializers.CharField):
    pass


class ProductListQuerySerializer(serializers.Serializer):
    """The list's query parameters; anything malformed is a 400 naming the parameter."""

    search = serializers.CharField(required=False, allow_blank=True, max_length=200)
    category = serializers.SlugField(required=False, max_length=100, help_text="A category slug")
    min_price = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=Decimal("0"), required=False
    )
    max_price = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=Decimal("0"), required=False
    )
    ordering = serializers.ChoiceField(choices=list(ORDERINGS), required=False)
    ids = IdListField(
        required=False,
        max_length=MAX_IDS * 37,  # a UUID and its comma each
        help_text=f"Comma-separated product ids (at most {MAX_IDS}); inactive products included.",
    )

    def validate_ids(self, value: str) -> list:
        raw_ids = [part.strip() for part in value.split(",") if part.strip()]
        if not raw_ids:
            raise serializers.ValidationError("Give at least one product id.")
        ids = list(dict.fromkeys(serializers.UUIDField().run_validation(raw) for raw in raw_ids))
        if len(ids) > MAX_IDS:
            raise serializers.ValidationError(f"At most {MAX_IDS} ids per request.")
        return ids


# Writes


# services.SKU_PATTERN as a client may type it: any case (stored upper-case), white space around it trimmed.
@extend_schema_field(
    {"type": "string", "maxLength": 64, "pattern": r"^\s*[A-Za-z0-9][A-Za-z0-9._-]{0,63}\s*$"}
)
class SkuField(serializers.CharField):
    pass


def _validated_sku(value: str) -> str:
    try:
        return services.normalize_sku(value)
    except DomainError as exc:
        raise serializers.ValidationError(exc.fields["sku"]) from exc


class ProductWriteSerializer(InputSerializer):
    """PUT needs sku, name, category and price (description defaults to empty, is_active is kept);
    PATCH takes any subset."""

    requires_any_field = True  # an empty PATCH is refused (the OpenAPI document says so)

    sku = SkuField(max_length=64)
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=5000, allow_blank=True, required=False, default="")
    category = serializers.SlugRelatedField(slug_field="slug", queryset=Category.objects.all())
    price = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0.01"))
    currency = serializers.ChoiceField(choices=[CURRENCY], required=False, help_text="Only USD is sold.")
    is_active = serializers.BooleanField(required=False)

    def validate_sku(self, value: str) -> str:
        return _validated_sku(value)

    def validate(self, attrs):
        if self.partial and not attrs:
            raise serializers.ValidationError("Send at least one field to change.")
        attrs.pop("currency", None)  # accepted for symmetry with reads; there is only one
        return attrs


class ProductCreateSerializer(ProductWriteSerializer):
    is_active = None  # a new product is active; retiring it is a DELETE
    initial_stock = serializers.IntegerField(
        min_value=0,
        max_value=MAX_INITIAL_STOCK,
        required=False,
        default=0,
        help_text="Opening stock, passed to inventory in product.created.",
    )
