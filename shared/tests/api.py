"""Views of the test service that exercise the shared request handling: a DRF view parsing JSON, one
reading the database, and plain Django views failing outside DRF."""

from decimal import Decimal

from django.core.exceptions import PermissionDenied
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from shared.web.serializers import InputSerializer, query_parameters
from tests.ledger.models import Account


class EchoApi(APIView):
    """Answers the JSON body it was sent (the shared parser's work)."""

    permission_classes = [AllowAny]
    authentication_classes = []

    def post(self, request):
        return Response(request.data)


class AccountsApi(APIView):
    """How many ledger accounts there are: one query."""

    permission_classes = [AllowAny]
    authentication_classes = []

    def get(self, request):
        return Response({"accounts": Account.objects.count()})


def forbidden(request):
    raise PermissionDenied


def broken(request):
    raise RuntimeError("a bug outside DRF")


class EntrySerializer(InputSerializer):
    name = serializers.CharField(max_length=5)
    count = serializers.IntegerField(required=False)
    price = serializers.DecimalField(max_digits=6, decimal_places=2, min_value=Decimal("0"), required=False)
    active = serializers.BooleanField(required=False)
    requires_any_field = True


class EntryApi(APIView):
    """Validates an entry strictly (shared.web.serializers) and answers what it read."""

    permission_classes = [AllowAny]
    serializer_class = EntrySerializer  # what the OpenAPI document describes

    def post(self, request):
        entry = EntrySerializer(data=request.data)
        entry.is_valid(raise_exception=True)
        return Response({key: str(value) for key, value in entry.validated_data.items()})


class AccountSerializer(serializers.ModelSerializer):
    class Meta:
        model = Account
        fields = ["id", "name"]


class AccountFilterSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, max_length=50)


class AccountListApi(ListAPIView):
    """Accounts, paginated (shared.web.pagination), for signed-in callers."""

    serializer_class = AccountSerializer

    def get_queryset(self):
        name = query_parameters(AccountFilterSerializer, self.request).get("name")
        accounts = Account.objects.order_by("id")
        return accounts.filter(name=name) if name is not None else accounts
