"""Every service's part of one order's saga, for the saga timeline in the orders admin (docs/admin.md).

`GET /internal/v1/saga/<order_id>/` (an `/internal/` route: the gateway never routes it) answers, for
the service that serves it, what it knows of the order:

- `outbox`: the events it published about the order (data.order_id), with when they were written and
  when the broker confirmed them (`published_at` null: still waiting in the outbox);
- `inbox`: the events its handlers consumed about the order, with how often each was delivered;
- `dead_letters`: messages about the order parked in its dead-letter queue, found by a peek that leaves
  every message in place (shared.messaging.deadletters);
- `records`: its own domain records of the order, from the selector named by the setting
  `SAGA_RECORDS` (a dotted path to `saga_records(*, order_id) -> list[dict]`, each dict a
  `selectors.SagaRecord`); a service without the setting has none;
- `consumes`: the event types it subscribes to, so a reader can tell an event not consumed yet from
  one this service never consumes.

Only other services may call it: a service token from identity's client-credentials grant with the
scope `saga:read` (shared.auth.api). An order the service never heard of is a 200 with empty lists: a
service cannot tell an order that does not exist from one it has no part in.

- `selectors`: the answer, read from this service's own tables and broker queue.
- `api`: the view and its OpenAPI description (mounted by shared.web.urls on every service).
- `testing`: service tokens and the checks every service's tests run on its part.
"""

SAGA_SCOPE = "saga:read"
