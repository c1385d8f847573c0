"""What operators' pages never show: the fields that carry a card token or a secret like it.

One list for every service: payments' admin leaves these fields out of its pages, and the outbox and
dead-letter pages (shared.messaging) show event envelopes with their values replaced. An event such as
`order.created` carries the customer's `payment_token` from orders through inventory to payments, so
the envelope has to be masked wherever it is displayed, not only in the service that charges.
"""

from __future__ import annotations

from typing import Any

SECRET_FIELDS = frozenset({"payment_token"})
HIDDEN = "(hidden)"


def redact(value: Any) -> Any:
    """A copy of `value` (JSON-like: dicts, lists, scalars) with every secret field's value hidden."""
    if isinstance(value, dict):
        return {key: HIDDEN if key in SECRET_FIELDS else redact(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value
