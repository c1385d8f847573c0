"""What every service serves over HTTP besides its own API, and how its API answers.

- `urls`: the URL patterns every service has (health, admin, OpenAPI schema, metrics, its saga part) and
  Django's error handlers.
- `errors`: domain errors and the contract's error shape `{"error": {"code", "message", "fields"}}` for
  every refusal, whether DRF or Django makes it.
- `health`: `/health/live` and `/health/ready` (healthy, degraded, unhealthy).
- `parsers`, `json_limits`: JSON request bodies with a bound on nesting (`json_limits` needs no Django:
  the payment-provider sandbox and the dead-letter tools use it too).
- `metadata`: what OPTIONS answers.
- `openapi`: the public OpenAPI document at /api/schema/.

Calls to other services are shared.http's business, not this package's.
"""
