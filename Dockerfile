# syntax=docker/dockerfile:1
#
# One image definition for every service of the order platform. Build one image per service:
#
#   docker build --build-arg SERVICE=orders --build-arg SERVICE_PORT=8104 -t order-platform/orders .
#
# (compose/docker-compose.yml and .github/workflows/ci.yml pass both from topology.toml.)
# The default command is the service's web server, started exactly as manage_all.py starts it, but bound
# to 0.0.0.0 inside the container. The other processes of a service use the same image:
#
#   worker   celery -A config worker --loglevel INFO --concurrency N --hostname <service>@%h -E
#   beat     celery -A config beat --loglevel INFO --schedule /tmp/celerybeat-schedule
#   migrate  sh -c "python manage.py migrate --noinput && python manage.py setup_messaging"
#
# Migrations never run when a web container starts: they are a one-shot job (compose: <service>-migrate,
# Kubernetes: Job <service>-migrate). Every image also carries the payment-provider sandbox and Flower
# (Celery's monitor), which compose and Kubernetes run from the first service's image.
#
# The gateway (nginx + its token verifier) is the `gateway` target of the same file:
#
#   docker build --target gateway -t order-platform/gateway .
#
# Its default command renders nginx.conf from topology.toml and the GATEWAY_* limits of its environment
# (gateway/render.py --container, as manage_all.py renders it locally), then runs nginx; the verifier
# runs from the same image: gunicorn gateway.verifier:application --bind 0.0.0.0:8099.

ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: the pinned runtime requirements in a virtualenv ----------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# Every pinned requirement ships a manylinux wheel, so no compiler is needed here.
RUN python -m venv /opt/venv
COPY requirements/base.txt /tmp/requirements/base.txt
RUN /opt/venv/bin/pip install --no-compile -r /tmp/requirements/base.txt

# --- runtime: slim, non-root, what every image shares -------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin app

COPY --from=builder /opt/venv /opt/venv

# /app mirrors the repository: shared.paths.REPO_ROOT (/app) is where topology.toml is read from,
# and the sandbox is importable as sandbox.payment_provider from /app.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app/shared:/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=config.settings \
    STATIC_ROOT=/app/static \
    WEB_WORKERS=1 \
    WEB_THREADS=4

WORKDIR /app
# gunicorn.conf.py: JSON logs of the processes started from /app (the payment-provider sandbox).
COPY topology.toml gunicorn.conf.py ./
COPY shared/shared ./shared/shared
COPY sandbox ./sandbox
COPY monitoring/__init__.py monitoring/alert_receiver.py ./monitoring/

# --- gateway: nginx (Debian's) with the rendered configuration, and the verifier -------------------------
FROM runtime AS gateway

# Debian's archive keeps only the current security release of a package, so an exact version pin would
# break every rebuild after an update; the base image's tag fixes the release line instead.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends nginx-light \
    && rm -rf /var/lib/apt/lists/*

COPY gateway ./gateway
COPY nginx ./nginx
# The events' AsyncAPI document as JSON: served at /docs/asyncapi.json, and read for /docs/events.html.
COPY contracts/asyncapi.json ./contracts/
# The renderer reads topology.toml through the typed model (standard library only, like the renderer).
COPY devtools/__init__.py devtools/topology.py ./devtools/

USER 10001:10001

EXPOSE 8000 8099

HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/docs/', timeout=4)"]

CMD ["sh", "-c", "python -m gateway.render --container /tmp/gateway && exec nginx -g 'daemon off;' -e stderr -p /tmp/gateway/nginx -c /tmp/gateway/nginx/nginx.conf"]

# --- service: one bounded context (the default target) --------------------------------------------------
FROM runtime AS service

# Everything above is the same for every service (and cached once); what follows is the service's own.
ARG SERVICE
ARG SERVICE_PORT=8000
ENV SERVICE_NAME=${SERVICE} \
    SERVICE_PORT=${SERVICE_PORT}

COPY services/${SERVICE} ./services/${SERVICE}
WORKDIR /app/services/${SERVICE}

# The admin's and the browsable API's assets, collected once into the image (whitenoise serves them).
# Settings need keys to load: throw-away values that exist only during this step. DEBUG=true lets them
# load without the secrets and peer addresses a running service must be given (shared.settings).
RUN test -n "${SERVICE}" && test -f manage.py \
    && DEBUG=true JWT_PUBLIC_KEY=collectstatic-only JWT_PRIVATE_KEY=collectstatic-only \
       python manage.py collectstatic --noinput --verbosity 0

USER 10001:10001

EXPOSE ${SERVICE_PORT}

# curl-less liveness: the process answers (a broken dependency is readiness' business, not a restart's).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/live' % os.environ['SERVICE_PORT'], timeout=4)"]

# The web server as manage_all.py starts it (workers/threads from topology.toml via WEB_WORKERS and
# WEB_THREADS), bound to every interface of the container.
CMD ["sh", "-c", "exec python -m shared.observability.multiproc gunicorn config.wsgi:application --bind 0.0.0.0:${SERVICE_PORT} --workers ${WEB_WORKERS} --threads ${WEB_THREADS} --worker-class gthread --timeout 30 --graceful-timeout 10 --no-control-socket"]
