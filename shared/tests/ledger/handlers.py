from shared.contracts import upcast
from shared.messaging.subscriptions import accepts_versions
from shared.observability import context
from tests.ledger.models import Credit


@accepts_versions(1, 2)  # version 2 has the amount as a money object: read as version 2 (upcast)
def on_credited(event) -> None:
    data = upcast(event, to_version=2).data
    # Deliberately not idempotent by itself: the inbox alone must make redeliveries harmless.
    Credit.objects.create(
        account=data["account"],
        amount=data["amount"]["amount"],
        event_id=event.id,
        correlation_id=context.get_correlation_id() or "",
    )


def on_poisoned(event) -> None:
    raise RuntimeError("this handler always fails")
