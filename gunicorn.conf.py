"""Read by gunicorn for the processes started from the repository root: the payment-provider sandbox
and the gateway's token verifier. JSON log lines like the services' (they are not traced)."""

import sys

from shared.observability.gunicorn_conf import service_from_argv, settings_for

globals().update(settings_for(service_from_argv(sys.argv), tracing=False))
