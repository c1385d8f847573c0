from shared.observability import context
from tests.ledger.models import Credit


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
