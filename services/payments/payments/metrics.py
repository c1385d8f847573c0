"""payments' business metrics (docs/observability.md), counted in `payments.services` after commit."""

from __future__ import annotations

from prometheus_client import Counter

from shared.observability.metrics import declare_label_sets

OUTCOMES = ("captured", "declined", "unavailable", "refunded", "refused_expired")

# captured | declined | unavailable (gave up past the deadline) | refunded | refused_expired (the
# reservation expired first: voided, never charged)
PAYMENTS = Counter("payments", "Payments reaching an outcome, by outcome.", ["outcome"])
declare_label_sets(PAYMENTS, ({"outcome": outcome} for outcome in OUTCOMES))
