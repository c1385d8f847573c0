from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from identity.emails import normalize_email
from identity.models import User
from shared.web.serializers import InputSerializer


@extend_schema_field({"type": "string", "format": "email", "maxLength": 320})
class EmailAddressField(serializers.CharField):
    """An e-mail address, validated and returned in its one stored form (identity.emails)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 320)  # the typed form; the stored form has at most 254
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> str:
        return normalize_email(super().to_internal_value(data))


class RegisterSerializer(InputSerializer):
    email = EmailAddressField(
        help_text="Stored and answered in its normal form: lower case, the domain in IDNA ASCII (`xn--`) "
        "form; the part before the @ must be ASCII."
    )
    password = serializers.CharField(write_only=True, trim_whitespace=False, max_length=128)
    full_name = serializers.CharField(max_length=200)


class UserSerializer(serializers.ModelSerializer):
    roles = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = User
        fields = ["id", "email", "full_name", "is_staff", "is_active", "roles", "date_joined"]
        read_only_fields = fields


class UserUpdateSerializer(InputSerializer):
    requires_any_field = True  # refused when empty (the OpenAPI document says so)

    is_active = serializers.BooleanField(required=False)
    is_staff = serializers.BooleanField(required=False)
    full_name = serializers.CharField(max_length=200, required=False)

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError("Send is_active, is_staff and/or full_name.")
        return attrs


class UserListQuerySerializer(serializers.Serializer):
    search = serializers.CharField(
        required=False, allow_blank=True, max_length=200, help_text="Part of the e-mail or name"
    )
    is_active = serializers.BooleanField(required=False, allow_null=False)


class CredentialsSerializer(InputSerializer):
    email = serializers.CharField(max_length=254)
    password = serializers.CharField(write_only=True, trim_whitespace=False, max_length=128)


class RefreshSerializer(InputSerializer):
    refresh = serializers.CharField(max_length=4096, trim_whitespace=False)


class LogoutSerializer(RefreshSerializer):
    pass


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class ServiceTokenRequestSerializer(InputSerializer):
    """OAuth 2.0 client credentials grant (RFC 6749, section 4.4); the client may authenticate with HTTP
    Basic instead of client_id/client_secret in the body."""

    grant_type = serializers.ChoiceField(choices=["client_credentials"])
    client_id = serializers.CharField(max_length=100, required=False)
    client_secret = serializers.CharField(max_length=200, required=False, trim_whitespace=False)
    scope = serializers.CharField(max_length=500, required=False, allow_blank=True)


class ServiceTokenSerializer(serializers.Serializer):
    access_token = serializers.CharField()
    token_type = serializers.CharField()
    expires_in = serializers.IntegerField()
    scope = serializers.CharField()
