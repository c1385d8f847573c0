"""inventory's business metrics (docs/observability.md), counted in `inventory.services` after commit."""

from __future__ import annotations

from prometheus_client import Counter

from shared.observability.metrics import declare_label_sets

OUTCOMES = ("reserved", "rejected", "expired", "released", "committed", "returned")

# reserved | rejected (out of stock or unknown product) | expired | released | committed | returned
# (a confirmed order's sold units back on hand)
RESERVATIONS = Counter("inventory_reservations", "Reservations reaching a state, by outcome.", ["outcome"])
declare_label_sets(RESERVATIONS, ({"outcome": outcome} for outcome in OUTCOMES))
