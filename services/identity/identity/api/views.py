import base64
from urllib.parse import unquote_plus

from django.conf import settings
from django.contrib.auth import authenticate
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.generics import ListAPIView
from rest_framework.parsers import FormParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from identity import selectors, services
from identity.api.serializers import (
    CredentialsSerializer,
    LogoutSerializer,
    RefreshSerializer,
    RegisterSerializer,
    ServiceTokenRequestSerializer,
    ServiceTokenSerializer,
    TokenPairSerializer,
    UserListQuerySerializer,
    UserSerializer,
    UserUpdateSerializer,
)
from identity.jwks import jwks_document
from identity.models import User
from shared.auth.api import IsStaff, refused
from shared.auth.tokens import TokenRefused
from shared.web.schema import error_response
from shared.web.serializers import query_parameters

# A refused credential: wrong password, an expired, revoked or reused refresh token, an unknown client.
REFUSED = {401: error_response(401, "The credentials or the token are refused.")}


class RegisterApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        summary="Register a customer account", request=RegisterSerializer, responses={201: UserSerializer}
    )
    def post(self, request):
        serializer = RegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.user_register(**serializer.validated_data)
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)


class TokenObtainApi(APIView):
    """Sign in with e-mail and password: a new sign-in and its first token pair."""

    permission_classes = [AllowAny]
    authentication_classes = []

    def get_authenticate_header(self, request):
        return 'Bearer realm="api"'

    @extend_schema(
        summary="Sign in: an access and a refresh token",
        request=CredentialsSerializer,
        responses={200: TokenPairSerializer, **REFUSED},
    )
    def post(self, request):
        serializer = CredentialsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = authenticate(request, **serializer.validated_data)
        if user is None or not user.is_active:
            raise AuthenticationFailed("No active account found with the given credentials")
        return Response(_pair(services.api_sign_in(user=user)))


class TokenRefreshApi(APIView):
    """A new token pair for the sign-in of a refresh token, with the user's roles as they are now."""

    permission_classes = [AllowAny]
    authentication_classes = []

    def get_authenticate_header(self, request):
        return 'Bearer realm="api"'

    @extend_schema(
        summary="Rotate a refresh token: a new token pair",
        request=RefreshSerializer,
        responses={200: TokenPairSerializer, **REFUSED},
    )
    def post(self, request):
        serializer = RefreshSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            pair = services.tokens_refresh(refresh=serializer.validated_data["refresh"])
        except TokenRefused as exc:
            raise refused(exc) from None
        return Response(_pair(pair))


def _pair(pair) -> dict:
    return {"access": pair.access, "refresh": pair.refresh}


class LogoutApi(APIView):
    """End the sign-in of a refresh token: it, and every access token minted for it, stop working."""

    permission_classes = [AllowAny]
    authentication_classes = []

    def get_authenticate_header(self, request):
        return 'Bearer realm="api"'

    @extend_schema(
        summary="Sign out: end a refresh token's sign-in",
        request=LogoutSerializer,
        responses={204: None, **REFUSED},
    )
    def post(self, request):
        serializer = LogoutSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            services.logout(refresh=serializer.validated_data["refresh"])
        except TokenRefused as exc:
            raise refused(exc) from None
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeApi(APIView):
    @extend_schema(summary="The caller's account", responses=UserSerializer)
    def get(self, request):
        return Response(UserSerializer(request.user).data)


class UserListApi(ListAPIView):
    permission_classes = [IsStaff]
    serializer_class = UserSerializer

    @extend_schema(summary="List user accounts (staff)", parameters=[UserListQuerySerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        filters = query_parameters(UserListQuerySerializer, self.request)
        return selectors.user_list(search=filters.get("search", ""), is_active=filters.get("is_active"))


class UserDetailApi(APIView):
    permission_classes = [IsStaff]

    @extend_schema(summary="One user account (staff)", responses=UserSerializer)
    def get(self, request, pk):
        return Response(UserSerializer(get_object_or_404(User, pk=pk)).data)

    @extend_schema(
        summary="Change an account's roles or deactivate it (staff)",
        request=UserUpdateSerializer,
        responses=UserSerializer,
    )
    def patch(self, request, pk):
        user = get_object_or_404(User, pk=pk)
        serializer = UserUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.user_update(user=user, actor_id=request.user.id, **serializer.validated_data)
        return Response(UserSerializer(user).data)


class ServiceTokenApi(APIView):
    """OAuth 2.0 client credentials grant for the platform's own services (an /internal/ route: the
    gateway never routes it). Errors keep the platform's error shape, with OAuth's codes."""

    permission_classes = [AllowAny]
    authentication_classes = []
    parser_classes = [*api_settings.DEFAULT_PARSER_CLASSES, FormParser]

    def get_authenticate_header(self, request):
        return 'Basic realm="internal"'

    @extend_schema(
        summary="A service token (OAuth 2.0 client credentials)",
        request=ServiceTokenRequestSerializer,
        responses={200: ServiceTokenSerializer, **REFUSED},
    )
    def post(self, request):
        serializer = ServiceTokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        client_id, secret = _client_credentials(request, serializer.validated_data)
        try:
            token, lifetime, scopes = services.service_token_grant(
                client_id=client_id, client_secret=secret, scope=serializer.validated_data.get("scope", "")
            )
        except TokenRefused as exc:
            raise refused(exc) from None
        body = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": lifetime,
            "scope": " ".join(scopes),
        }
        return Response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def _client_credentials(request, data: dict) -> tuple[str, str]:
    """HTTP Basic (RFC 6749 2.3.1: URL-encoded id and secret) or the body's client_id/client_secret."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            client_id, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise AuthenticationFailed(
                {"detail": "Malformed Basic credentials.", "code": "invalid_client"}
            ) from None
        return unquote_plus(client_id), unquote_plus(secret)
    return data.get("client_id", ""), data.get("client_secret", "")


class JwksApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        summary="The public keys that verify the platform's tokens (JWKS)",
        responses=inline_serializer("Jwks", {"keys": serializers.ListField(child=serializers.DictField())}),
    )
    def get(self, request):
        response = Response(jwks_document(settings.JWT["PUBLIC_KEY"]))
        response["Cache-Control"] = "public, max-age=300"
        return response
