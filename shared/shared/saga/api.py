"""`GET /internal/v1/saga/<order_id>/` on every service: its part of an order's saga, for services only."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from shared.auth.api import HasServiceScope, ServiceTokenAuthentication
from shared.saga import SAGA_SCOPE, selectors


class SagaOutboxRowSerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="The event id (its outbox row's primary key).")
    event_type = serializers.CharField()
    correlation_id = serializers.CharField(allow_blank=True)
    causation_id = serializers.CharField(allow_null=True, help_text="The event whose handling published it.")
    created_at = serializers.DateTimeField(help_text="Written with the state change it announces.")
    published_at = serializers.DateTimeField(
        allow_null=True, help_text="Confirmed by the broker; null while the row waits in the outbox."
    )
    attempts = serializers.IntegerField()
    last_error = serializers.CharField(allow_blank=True)


class SagaInboxRowSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The inbox row's primary key.")
    consumer = serializers.CharField(help_text="The handler that consumed it (dotted path).")
    event_id = serializers.UUIDField()
    event_type = serializers.CharField()
    correlation_id = serializers.CharField(allow_blank=True)
    received_at = serializers.DateTimeField(help_text="When the handler's transaction took it.")
    deliveries = serializers.IntegerField(
        help_text="Deliveries that reached the inbox: 1, plus every duplicate skipped since."
    )


class SagaDeadLetterSerializer(serializers.Serializer):
    id = serializers.CharField(allow_null=True, help_text="The task id; for an event, its event id.")
    event_type = serializers.CharField(allow_null=True)
    correlation_id = serializers.CharField(allow_null=True)
    reason = serializers.CharField(allow_null=True, help_text="delivery_limit, rejected, expired, maxlen")
    queue = serializers.CharField(allow_null=True, help_text="The queue it was dead-lettered from.")
    death_count = serializers.IntegerField()
    first_death_at = serializers.DateTimeField(allow_null=True)
    replayed = serializers.IntegerField(help_text="How often an operator replayed it before.")


class SagaDeadLettersSerializer(serializers.Serializer):
    messages = SagaDeadLetterSerializer(many=True)
    scanned = serializers.IntegerField(help_text="Dead letters of the service looked at.")
    complete = serializers.BooleanField(help_text="False when the queue held more than were looked at.")
    error = serializers.CharField(
        allow_null=True, help_text="Why the queue could not be read; null if it was."
    )


class SagaRecordSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="reservation, payment, refund, notification, status, ...")
    at = serializers.DateTimeField()
    summary = serializers.CharField()
    status = serializers.CharField(allow_blank=True)
    object_id = serializers.CharField(allow_null=True, help_text="Its primary key in the service's admin.")
    admin_model = serializers.CharField(
        allow_blank=True, help_text="<app_label>.<model_name> of its page in the service's admin."
    )
    details = serializers.DictField(help_text="A few more fields worth seeing.")


class SagaPartSerializer(serializers.Serializer):
    service = serializers.CharField()
    order_id = serializers.UUIDField()
    consumes = serializers.ListField(child=serializers.CharField(), help_text="Event types it subscribes to.")
    outbox = SagaOutboxRowSerializer(
        many=True, help_text="Events it published about the order, oldest first."
    )
    inbox = SagaInboxRowSerializer(many=True, help_text="Events it consumed about the order, oldest first.")
    dead_letters = SagaDeadLettersSerializer()
    records = SagaRecordSerializer(many=True, help_text="Its own records of the order, oldest first.")


_ERROR = inline_serializer(
    "SagaPartError",
    {
        "error": inline_serializer(
            "SagaPartErrorBody",
            {
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "fields": serializers.DictField(),
            },
        )
    },
)


class SagaPartApi(APIView):
    """This service's part of an order's saga. Other services only (a service token with `saga:read`)."""

    authentication_classes = [ServiceTokenAuthentication]
    permission_classes = [HasServiceScope]
    required_scope = SAGA_SCOPE

    @extend_schema(
        operation_id="internal_saga_part",
        tags=["internal"],
        summary="This service's part of an order's saga (service token with saga:read)",
        description=(
            "What this service published, consumed, dead-lettered and recorded about the order. An order "
            "it never heard of answers 200 with empty lists."
        ),
        responses={
            200: SagaPartSerializer,
            401: OpenApiResponse(_ERROR, description="No token, or not a valid service token."),
            403: OpenApiResponse(_ERROR, description="A service token without the scope saga:read."),
        },
    )
    def get(self, request, order_id):
        return Response(SagaPartSerializer(selectors.saga_part(order_id=order_id)).data)
