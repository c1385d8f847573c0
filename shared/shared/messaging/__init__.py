"""Events between services: envelope, transactional outbox, idempotent inbox, broker topology.

A service publishes with `publish_event(...)` inside the transaction that changes its state, and
consumes by naming handlers in its settings' `EVENT_SUBSCRIPTIONS`. The rest (relay, confirms,
dedup, dead-lettering) is done here, the same way for every service.

- `events`: the envelope and `publish_event` (outbox); `relay`: outbox to broker; `inbox`: handled once.
- `subscriptions`, `topology`: what a service consumes and the broker's exchanges and queues.
- `deadletters`, `admin`: parked messages, their replay, and the outbox and inbox in the admin.
- `celery`: the Celery app of every service's worker; `tasks`: the two tasks every worker runs.
- `flower_config`: `celery --config shared.messaging.flower_config flower`, naming every queue.
"""
