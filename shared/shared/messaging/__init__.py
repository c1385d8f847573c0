"""Events between services: envelope, transactional outbox, idempotent inbox, broker topology.

A service publishes with `publish_event(...)` inside the transaction that changes its state, and
consumes by naming handlers in its settings' `EVENT_SUBSCRIPTIONS`. The rest (relay, confirms,
dedup, dead-lettering) is done here, the same way for every service.
"""
