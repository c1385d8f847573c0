"""Read by gunicorn from its working directory: JSON logs and tracing, as every web process has."""

from shared.observability.gunicorn_conf import settings_for

globals().update(settings_for("notifications"))
