"""payments' business metrics (docs/observability.md), counted in `payments.services` after commit."""

from __future__ import annotations

from prometheus_client import Counter

# captured | declined | unavailable (gave up past the deadline) | refunded | refused_expired (the
# reservation expired first: voided, never charged)
PAYMENTS = Counter("payments", "Payments reaching an outcome, by outcome.", ["outcome"])
