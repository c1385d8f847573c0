"""Seeing what the platform does: logs, metrics and traces, joined on one correlation id.

- `context`: the correlation id (`X-Request-ID`), the event being handled and what the work is about.
- `middleware`: takes or makes the request's correlation id and echoes it (every service's MIDDLEWARE).
- `logging`: one JSON line per record, alike in every process.
- `tracing`: OpenTelemetry, set up after each fork; trace context carried in event envelopes too.
- `metrics`: the shared Prometheus metrics, scrape-time collectors and the multiprocess export.
- `multiproc`: `python -m shared.observability.multiproc COMMAND`: a clean metrics directory, then COMMAND.
- `gunicorn_conf`: every web process's gunicorn settings (JSON logs, tracing after fork, metrics).

Nothing here imports the rest of the package: every other part may log, count and trace.
"""
