"""Views of the test service that exercise the shared request handling: a DRF view parsing JSON, and
plain Django views failing outside DRF."""

from django.core.exceptions import PermissionDenied
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView


class EchoApi(APIView):
    """Answers the JSON body it was sent (the shared parser's work)."""

    permission_classes = [AllowAny]
    authentication_classes = []

    def post(self, request):
        return Response(request.data)


def forbidden(request):
    raise PermissionDenied


def broken(request):
    raise RuntimeError("a bug outside DRF")
