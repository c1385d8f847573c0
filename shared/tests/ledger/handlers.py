from shared.messaging.subscriptions import accepts_versions
from shared.observability import context
from tests.ledger.models import Credit


@accepts_versions(1, 2)  # version 2 only adds fields: the tests show a declared version is read
def on_credited(event) -> None:
    # Deliberately not idempotent by itself: the inbox alone must make redeliveries harmless.
    Credit.objects.create(
        account=event.data["account"],
        amount=event.data["amount"],
        event_id=event.id,
        correlation_id=context.get_correlation_id() or "",
    )


def on_poisoned(event) -> None:
    raise RuntimeError("this handler always fails")
