"""Views of the test service that exercise the shared request handling: a DRF view parsing JSON, one
reading the database, and plain Django views failing outside DRF."""

from django.core.exceptions import PermissionDenied
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

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
