from django.db import transaction

from shared.messaging.events import Event, publish_event
from tests.ledger.models import Account


def account_credit(*, account: str, amount: int, fail_after_publish: bool = False) -> Event:
    with transaction.atomic():
        Account.objects.get_or_create(name=account)
        event = publish_event("ledger.credited", {"account": account, "amount": amount})
        if fail_after_publish:
            raise RuntimeError("the business transaction fails after recording its event")
    return event
