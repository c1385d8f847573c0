"""Building blocks shared by every service of the order platform, grouped by concern.

- `settings`: the settings every service shares, read from the environment (`service_settings`).
- `messaging`: events between services (outbox, inbox, topology, dead letters) and the Celery app.
- `contracts`: each event type and version's JSON Schema, upcasters, and the AsyncAPI document.
- `http`: calls to other services: timeouts, retries, a circuit breaker shared through Redis.
- `web`: what every service serves (URLs, health, the error shape, request parsing, OpenAPI).
- `auth`: identity's tokens verified everywhere, key loading, service tokens, admin single sign-on.
- `observability`: the correlation id, JSON logs, metrics, tracing, gunicorn's settings.
- `admin_ui`: what every Django admin shares (navigation, links, view-only pages, redaction).
- `saga`: every service's part of an order's saga, for the timeline in orders' admin.
- `testing`: helpers every service's tests and the cross-service tests use.
- `paths`: where the repository (topology.toml, `var/`) is.
"""
