from rest_framework import serializers
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer

from identity.models import User


class RegisterSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(write_only=True, trim_whitespace=False, max_length=128)
    full_name = serializers.CharField(max_length=200)


class UserSerializer(serializers.ModelSerializer):
    roles = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = User
        fields = ["id", "email", "full_name", "is_staff", "is_active", "roles", "date_joined"]
        read_only_fields = fields


class UserUpdateSerializer(serializers.Serializer):
    is_active = serializers.BooleanField(required=False)
    full_name = serializers.CharField(max_length=200, required=False)

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError("Send is_active and/or full_name.")
        return attrs


class LogoutSerializer(serializers.Serializer):
    refresh = serializers.CharField()


class TokenObtainSerializer(TokenObtainPairSerializer):
    """Tokens carry what other services need to authorize without asking identity."""

    @classmethod
    def get_token(cls, user):
        token = super().get_token(user)
        token["email"] = user.email
        token["is_staff"] = user.is_staff
        token["roles"] = user.roles
        return token
