from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.views import TokenObtainPairView

from identity import selectors, services
from identity.api.serializers import (
    LogoutSerializer,
    RegisterSerializer,
    TokenObtainSerializer,
    UserSerializer,
    UserUpdateSerializer,
)
from identity.models import User
from shared.auth import IsStaff
from shared.jwt_keys import jwks_document


class RegisterApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(request=RegisterSerializer, responses={201: UserSerializer})
    def post(self, request):
        serializer = RegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.user_register(**serializer.validated_data)
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)


class TokenObtainApi(TokenObtainPairView):
    serializer_class = TokenObtainSerializer


class LogoutApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    def get_authenticate_header(self, request):
        # Like simplejwt's token views: an invalid refresh token is a 401 (DRF turns it into 403 without).
        return 'Bearer realm="api"'

    @extend_schema(request=LogoutSerializer, responses={204: None})
    def post(self, request):
        serializer = LogoutSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            services.token_revoke(refresh=serializer.validated_data["refresh"])
        except TokenError as exc:  # garbage, expired, already blacklisted or not a refresh token
            raise InvalidToken(exc.args[0]) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeApi(APIView):
    @extend_schema(responses=UserSerializer)
    def get(self, request):
        return Response(UserSerializer(request.user).data)


class UserListApi(ListAPIView):
    permission_classes = [IsStaff]
    serializer_class = UserSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("search", str, description="Part of the e-mail or name"),
            OpenApiParameter("is_active", bool),
        ]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        is_active = self.request.query_params.get("is_active")
        return selectors.user_list(
            search=self.request.query_params.get("search", ""),
            is_active=None if is_active is None else is_active.lower() in ("1", "true", "yes"),
        )


class UserDetailApi(APIView):
    permission_classes = [IsStaff]

    @extend_schema(responses=UserSerializer)
    def get(self, request, pk):
        return Response(UserSerializer(get_object_or_404(User, pk=pk)).data)

    @extend_schema(request=UserUpdateSerializer, responses=UserSerializer)
    def patch(self, request, pk):
        user = get_object_or_404(User, pk=pk)
        serializer = UserUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.user_update(user=user, **serializer.validated_data)
        return Response(UserSerializer(user).data)


class JwksApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        responses=inline_serializer("Jwks", {"keys": serializers.ListField(child=serializers.DictField())})
    )
    def get(self, request):
        response = Response(jwks_document(settings.JWT_PUBLIC_KEY))
        response["Cache-Control"] = "public, max-age=300"
        return response
