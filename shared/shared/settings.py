"""The settings every service shares, read from the environment (12-factor).

`service_settings(...)` returns them as a dict. A service's `config/settings.py` names itself and what
is its own (its settings in `extra`), and applies the result to its module:

    globals().update(
        service_settings(
            base_dir=Path(__file__).resolve().parent.parent,
            service="orders",
            apps=["orders"],
            subscriptions={"payment.succeeded": "orders.handlers.on_payment_succeeded"},
            extra={"CART_TTL_SECONDS": env.int("CART_TTL_SECONDS", default=7 * 24 * 3600)},
        )
    )

A setting derived from the shared ones is read from the returned dict before it is applied (identity's
SESSION_COOKIE_AGE from JWT), so no settings module refers to a name it did not assign itself.

Nothing exists only in "production": integrations switch on from the environment, and with DEBUG off
no secret has a default (SECRET_KEY, SERVICE_CLIENT_SECRET): a service without them refuses to start.
Variables:
DATABASE_URL, DATABASE_REPLICA_URL and REPLICA_* (the read replica: _databases), BROKER_URL, REDIS_URL,
SECRET_KEY, DEBUG, ALLOWED_HOSTS, LOG_LEVEL, LOG_FORMAT (json|text),
JWT_* (see shared.auth.keys), JWT_ACCESS_MINUTES, JWT_REFRESH_HOURS, ADMIN_SIGN_IN_HOURS,
SERVICE_TOKEN_SECONDS, SERVICE_CLIENT_SECRET, AUTH_REVOCATION_TIMEOUT (see shared.auth),
EVENTS_DELIVERY_LIMIT, EVENTS_HANDLER_ATTEMPTS, OUTBOX_SWEEP_SECONDS, TASK_TIME_LIMIT, EVENT_VERSIONS,
MESSAGING_PARTITION_SECONDS, MESSAGING_PARTITIONS_AHEAD, OUTBOX_RETENTION_SECONDS, INBOX_RETENTION_SECONDS
(see _partitions), <NAME>_URL (the base URL of each service this one calls),
PLATFORM_SERVICES (every service, in order),
EMAIL_BACKEND, EMAIL_FILE_PATH, EMAIL_HOST, EMAIL_PORT, DEFAULT_FROM_EMAIL, STATIC_URL, STATIC_ROOT,
USE_X_FORWARDED_HOST, TRUST_X_FORWARDED_PROTO, CSRF_TRUSTED_ORIGINS, SESSION_COOKIE_SECURE,
CSRF_COOKIE_SECURE, ADMIN_SSO_* (see shared.auth.admin_sso),
OTEL_TRACES_EXPORTER (none|file|otlp; read by shared.observability.tracing, which each web and worker
process sets up after its fork).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

from shared.auth.keys import KeyPair, load_key_pair
from shared.auth.tokens import ADMIN_SSO_COOKIE
from shared.messaging import topology
from shared.observability import tracing
from shared.observability.logging import logging_config
from shared.paths import REPO_ROOT

DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

_BASE_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_prometheus",
    "shared",
    "shared.messaging",
]

_MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "shared.observability.middleware.CorrelationIdMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "shared.auth.admin_sso.middleware.AdminSsoMiddleware",
    # After authentication: a request's reader is its user (shared.replica).
    "shared.replica.middleware.ReadYourWritesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

_TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

_PASSWORD_VALIDATORS = [
    {"NAME": f"django.contrib.auth.password_validation.{name}"}
    for name in (
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    )
]


CONSUMER_ADMIN_APP = "shared.auth.admin_sso.apps.ConsumerAdminConfig"


def _middleware(*, consumes_sso: bool) -> list[str]:
    """identity issues the sign-on cookie and keeps its own admin sessions: no SSO middleware there."""
    sso = "shared.auth.admin_sso.middleware.AdminSsoMiddleware"
    return [name for name in _MIDDLEWARE if consumes_sso or name != sso]


def _service_urls(env: environ.Env, downstreams: list[str], *, debug: bool) -> dict[str, str]:
    """Where each service this one calls is: `<NAME>_URL`, set by every deployment (locally the gateway's
    internal balancers, in compose DNS names, on Kubernetes Services; docs/development.md, "Configuration
    and service discovery"). Required with DEBUG off; under DEBUG a missing one fails at the call
    (shared.http.service_url)."""
    urls = {name: env.str(f"{name.upper()}_URL", default="") for name in downstreams}
    missing = [f"{name.upper()}_URL" for name, url in urls.items() if not url]
    if missing and not debug:
        raise ImproperlyConfigured(
            f"{', '.join(missing)} is not set: where each service this one calls is found (DEBUG is off)"
        )
    return {name: url for name, url in urls.items() if url}


def _database(env: environ.Env, url: str) -> dict:
    database = environ.Env.db_url_config(url)
    database["ENGINE"] = "django_prometheus.db.backends.postgresql"
    # Persistent connections: no per-request or per-task connection setup on the hot path.
    database["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=300)
    database["CONN_HEALTH_CHECKS"] = True
    return database


def _databases(env: environ.Env, service: str) -> dict:
    """`default` is the primary: writes, the saga, the outbox/inbox and every read-modify-write. `replica`
    is a streaming replica (DATABASE_REPLICA_URL: same database, role and password, another host or
    port) for the reads that tolerate lag, chosen explicitly by selectors (docs/data.md, "Read
    replica"). Without a replica the alias is the primary, so the code has one shape.
    """
    primary_url = env.str("DATABASE_URL", default=f"postgres://{service}@127.0.0.1:5432/{service}")
    primary = _database(env, primary_url)
    replica = _database(env, env.str("DATABASE_REPLICA_URL", default="") or primary_url)
    # A stopped replica must cost a read little: refused at once, or given up after a second.
    replica.setdefault("OPTIONS", {})["connect_timeout"] = env.int("REPLICA_CONNECT_TIMEOUT", default=1)
    # Each request probes its replica connection anyway (shared.replica.reads): no second check.
    replica["CONN_HEALTH_CHECKS"] = False
    # Tests have one database per alias: the replica alias is the primary's test database.
    replica["TEST"] = {"MIRROR": "default"}
    return {"default": primary, "replica": replica}


def _replica(env: environ.Env) -> dict:
    """When lag-tolerant reads use the replica (shared.replica, docs/data.md "Read replica")."""
    return {
        "REPLICA_ENABLED": bool(env.str("DATABASE_REPLICA_URL", default="")),
        # Beyond this lag the replica serves nobody: it bounds how stale a lag-tolerant read may be.
        "REPLICA_MAX_LAG_SECONDS": env.float("REPLICA_MAX_LAG_SECONDS", default=5.0),
        # How often each process samples the replica's lag (reads never wait for a sample).
        "REPLICA_CHECK_SECONDS": env.float("REPLICA_CHECK_SECONDS", default=1.0),
        # `X-Read-From` on answers that made lag-tolerant reads (tests, debugging): off, as it tells
        # callers about the database layout.
        "REPLICA_READ_HEADER": env.bool("REPLICA_READ_HEADER", default=False),
    }


def _partitions(env: environ.Env, delivery_limit: int) -> dict:
    """The outbox's and inbox's time partitions and retention (shared.messaging.partitions,
    docs/data.md). Seconds, so that a soak can use minute-sized partitions."""
    partition_seconds = env.int("MESSAGING_PARTITION_SECONDS", default=86_400)
    inbox_retention = env.int("INBOX_RETENTION_SECONDS", default=14 * 86_400)
    # The longest a message keeps coming back from its own queue: every delivery up to the limit may
    # run until the task time limit. The inbox must remember the event for at least that long.
    redelivery_window = delivery_limit * env.int("TASK_TIME_LIMIT", default=60)
    if partition_seconds < 60:
        raise ImproperlyConfigured("MESSAGING_PARTITION_SECONDS is at least 60")
    if inbox_retention < redelivery_window:
        raise ImproperlyConfigured(
            f"INBOX_RETENTION_SECONDS={inbox_retention} is shorter than the window in which a queue "
            f"redelivers an event (EVENTS_DELIVERY_LIMIT x TASK_TIME_LIMIT = {redelivery_window} s): "
            "a repeat could apply twice"
        )
    return {
        "MESSAGING_PARTITION_SECONDS": partition_seconds,
        "MESSAGING_PARTITIONS_AHEAD": env.int("MESSAGING_PARTITIONS_AHEAD", default=7),
        "OUTBOX_RETENTION_SECONDS": env.int("OUTBOX_RETENTION_SECONDS", default=7 * 86_400),
        "INBOX_RETENTION_SECONDS": inbox_retention,
    }


def _rest_framework(*, authentication: str, debug: bool) -> dict:
    renderers = ["rest_framework.renderers.JSONRenderer"]
    if debug:
        renderers.append("rest_framework.renderers.BrowsableAPIRenderer")
    return {
        "DEFAULT_AUTHENTICATION_CLASSES": [authentication],
        "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
        "DEFAULT_RENDERER_CLASSES": renderers,
        # Refuses bodies nested deeper than JSON_MAX_DEPTH (shared.web.parsers); OPTIONS without `actions`.
        "DEFAULT_PARSER_CLASSES": ["shared.web.parsers.JSONParser"],
        "DEFAULT_METADATA_CLASS": "shared.web.metadata.ApiMetadata",
        "DEFAULT_PAGINATION_CLASS": "shared.web.pagination.PageNumberPagination",
        "PAGE_SIZE": 20,
        "EXCEPTION_HANDLER": "shared.web.errors.exception_handler",
        "DEFAULT_SCHEMA_CLASS": "shared.web.schema.PlatformAutoSchema",
        "UNAUTHENTICATED_USER": None,
    }


# Said once for every operation of every service (the operations document their own errors).
API_DESCRIPTION = """JSON in and out. Every error is `{"error": {"code", "message", "fields"}}` with its
status; `fields` names each invalid input. Request bodies are read strictly: a value of another JSON type
than the schema's is refused, not converted, and text never holds the NUL character (U+0000). Lists are
paginated `{count, next, previous, results}`; `page` counts from 1. A 503 carries `Retry-After`."""


def _jwt(env: environ.Env, keys: KeyPair) -> dict:
    """identity's tokens (shared.auth.tokens): who signs them, how long each kind lives."""
    return {
        "ISSUER": env.str("JWT_ISSUER", default="order-platform-identity"),
        "SIGNING_KEY": keys.private_pem,  # identity only; empty everywhere else
        "PUBLIC_KEY": keys.public_pem,
        "ACCESS_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=5)),
        # An API sign-in's whole life: rotating its refresh token never extends it.
        "SIGN_IN_LIFETIME": timedelta(hours=env.int("JWT_REFRESH_HOURS", default=24)),
        "ADMIN_SIGN_IN_LIFETIME": timedelta(hours=env.int("ADMIN_SIGN_IN_HOURS", default=8)),
        "SERVICE_TOKEN_LIFETIME": timedelta(seconds=env.int("SERVICE_TOKEN_SECONDS", default=300)),
    }


def _secret(env: environ.Env, name: str, *, debug: bool, local_default: str) -> str:
    """A secret from the environment. Only with DEBUG on may a well-known local value stand in for it:
    a service that would otherwise sign sessions with a key anyone can read refuses to start."""
    value = env.str(name, default="")
    if value:
        return value
    if debug:
        return local_default
    raise ImproperlyConfigured(
        f"{name} is not set. Set it (a long random value; `manage_all.py up` generates one per instance), "
        "or set DEBUG=true for a throwaway local run."
    )


def _admin(env: environ.Env, service: str) -> dict:
    """Each admin lives under /admin/<service>/ (its assets under /static/<service>/), so the paths
    Django builds are right both on the service's own port and through the gateway, and six admins on
    one host keep their cookies apart. identity's login is everyone's (shared.auth.admin_sso, docs/admin.md).
    """
    admin_path = f"admin/{service}/"
    return {
        "ADMIN_URL_PATH": admin_path,
        "STATIC_URL": env.str("STATIC_URL", default=f"/static/{service}/"),
        "SESSION_COOKIE_NAME": f"{service}_sessionid",
        "SESSION_COOKIE_PATH": f"/{admin_path}",
        "CSRF_COOKIE_NAME": f"{service}_csrftoken",
        "CSRF_COOKIE_PATH": f"/{admin_path}",
        "SESSION_COOKIE_SECURE": env.bool("SESSION_COOKIE_SECURE", default=False),
        "CSRF_COOKIE_SECURE": env.bool("CSRF_COOKIE_SECURE", default=False),
        # Behind the gateway: the browser's host (with its port) and scheme as nginx saw them, so the
        # CSRF origin check and absolute URLs match what the browser sent. nginx always overwrites both
        # headers, and the services listen on loopback/cluster addresses only.
        "USE_X_FORWARDED_HOST": env.bool("USE_X_FORWARDED_HOST", default=True),
        "SECURE_PROXY_SSL_HEADER": (
            ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("TRUST_X_FORWARDED_PROTO", default=True) else None
        ),
        # Origins allowed to POST to the admin when they differ from the request's host (other proxies).
        "CSRF_TRUSTED_ORIGINS": env.list("CSRF_TRUSTED_ORIGINS", default=[]),
        "ADMIN_SSO": {
            "COOKIE_NAME": ADMIN_SSO_COOKIE,
            "COOKIE_SECONDS": env.int("ADMIN_SSO_COOKIE_SECONDS", default=900),
            "COOKIE_SECURE": env.bool("ADMIN_SSO_COOKIE_SECURE", default=False),
            "LOGIN_URL": env.str("ADMIN_SSO_LOGIN_URL", default="/admin/identity/login/"),
            "LOGOUT_URL": env.str("ADMIN_SSO_LOGOUT_URL", default="/admin/identity/logout/"),
        },
    }


def _celery(env: environ.Env, service: str, event_types: list[str], delivery_limit: int, beat: dict) -> dict:
    """Design section 4: nothing acknowledged before it is done, nothing published unconfirmed."""
    time_limit = env.int("TASK_TIME_LIMIT", default=60)
    tasks_queue = topology.tasks_queue_name(service)
    return {
        "CELERY_BROKER_URL": env.str("BROKER_URL", default=DEFAULT_BROKER_URL),
        "CELERY_BROKER_TRANSPORT_OPTIONS": {"confirm_publish": True},
        "CELERY_BROKER_CONNECTION_TIMEOUT": 2,
        "CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP": True,
        "CELERY_TASK_ACKS_LATE": True,
        "CELERY_TASK_REJECT_ON_WORKER_LOST": True,
        "CELERY_WORKER_PREFETCH_MULTIPLIER": 1,
        "CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS": True,
        "CELERY_TASK_SERIALIZER": "json",
        "CELERY_RESULT_SERIALIZER": "json",
        "CELERY_ACCEPT_CONTENT": ["json"],
        "CELERY_TASK_IGNORE_RESULT": True,
        "CELERY_TASK_TIME_LIMIT": time_limit,
        "CELERY_TASK_SOFT_TIME_LIMIT": max(1, time_limit - 10),
        "CELERY_TASK_QUEUES": topology.service_queues(service, event_types, delivery_limit),
        "CELERY_TASK_DEFAULT_QUEUE": tasks_queue,
        "CELERY_TASK_DEFAULT_EXCHANGE": tasks_queue,
        "CELERY_TASK_DEFAULT_ROUTING_KEY": tasks_queue,
        "CELERY_TASK_CREATE_MISSING_QUEUES": False,
        "CELERY_DB_REUSE_MAX": 1_000_000,  # see shared.messaging.celery._recycle_database_connections
        # Task events cost broker messages on every task; Flower switches them on while it runs.
        "CELERY_WORKER_SEND_TASK_EVENTS": False,
        "CELERY_WORKER_HIJACK_ROOT_LOGGER": False,  # keep the JSON log format
        # Dead-letters an undecodable body instead of acknowledging it (shared.messaging.consumer).
        "CELERY_WORKER_CONSUMER": "shared.messaging.consumer:DeadLetteringConsumer",
        "CELERY_BEAT_SCHEDULE": beat,
    }


def service_settings(
    *,
    base_dir: Path,
    service: str,
    apps: list[str],
    subscriptions: dict[str, str | list[str]] | None = None,
    signs_tokens: bool = False,
    beat_schedule: dict | None = None,
    extra_apps: list[str] | None = None,
    downstreams: list[str] | None = None,
    api_authentication: str = "shared.auth.api.AccessTokenAuthentication",
    admin_app: str = CONSUMER_ADMIN_APP,
    service_client: bool = False,
    openapi: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The settings of `service`, for its settings module to apply (`globals().update(...)`).

    `base_dir`: the service's directory (BASE_DIR). `extra`: the service's own settings, added last.
    `openapi`: additions to SPECTACULAR_SETTINGS (drf-spectacular's), such as ENUM_NAME_OVERRIDES.
    `downstreams`: the services this one calls through `shared.http`: each one's address comes from
    `<NAME>_URL` (SERVICE_URLS), and its circuit breaker state is exported as
    `circuit_breaker_state{downstream}`, even by a process that has not called it yet.
    `signs_tokens`: identity only (it loads the private key). `api_authentication` and `admin_app`:
    identity's own classes replace the consumers'. `service_client`: the service calls other services'
    `/internal/` routes, so it needs its client secret (SERVICE_CLIENT_SECRET) for identity's
    client-credentials grant (docs/security.md), and identity among its downstreams.
    """
    env = environ.Env()
    debug = env.bool("DEBUG", default=False)
    subscriptions = subscriptions or {}
    delivery_limit = env.int("EVENTS_DELIVERY_LIMIT", default=5)
    sweep_seconds = env.float("OUTBOX_SWEEP_SECONDS", default=2.0)
    beat = {
        # No `expires`: Celery turns it into a message TTL, and RabbitMQ would dead-letter every sweep
        # that waited out a worker restart. A backlog of sweeps is harmless: each is one cheap query.
        "relay-outbox": {"task": "messaging.relay_outbox", "schedule": sweep_seconds},
        **(beat_schedule or {}),
    }
    partitioning = _partitions(env, delivery_limit)
    beat["maintain-partitions"] = {
        "task": "messaging.maintain_partitions",
        # Often enough that a missed run or two never leaves the tables without a partition ahead.
        "schedule": max(5.0, min(partitioning["MESSAGING_PARTITION_SECONDS"] / 4, 3600.0)),
    }
    downstreams = [*(downstreams or []), *(["identity"] if service_client else [])]
    downstreams = list(dict.fromkeys(downstreams))  # in order, once each
    keys = load_key_pair(env, signs=signs_tokens)
    redis_url = env.str("REDIS_URL", default=DEFAULT_REDIS_URL)
    redis_timeout = env.float("REDIS_TIMEOUT_SECONDS", default=0.25)
    client_secret = (
        _secret(
            env, "SERVICE_CLIENT_SECRET", debug=debug, local_default=f"insecure-local-only-{service}-client"
        )
        if service_client
        else ""
    )

    settings = dict(
        SERVICE_NAME=service,
        BASE_DIR=base_dir,
        SECRET_KEY=_secret(env, "SECRET_KEY", debug=debug, local_default=f"insecure-local-only-{service}"),
        DEBUG=debug,
        ALLOWED_HOSTS=env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", service]),
        INSTALLED_APPS=["shared.admin_ui", admin_app, *_BASE_APPS, *(extra_apps or []), *apps],
        MIDDLEWARE=_middleware(consumes_sso=admin_app == CONSUMER_ADMIN_APP),
        ROOT_URLCONF="config.urls",
        WSGI_APPLICATION="config.wsgi.application",
        TEMPLATES=_TEMPLATES,
        DATABASES=_databases(env, service),
        **_replica(env),
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        CACHES={
            "default": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": redis_url,
                "KEY_PREFIX": service,
                # Short: a local Redis answers in a millisecond, and a hung one must not hold a request
                # (shared.redis_gate then stops asking it for REDIS_BACKOFF_SECONDS).
                "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": redis_timeout, "SOCKET_TIMEOUT": redis_timeout},
            }
        },
        AUTH_PASSWORD_VALIDATORS=_PASSWORD_VALIDATORS,
        LANGUAGE_CODE="en-us",
        TIME_ZONE="UTC",
        USE_I18N=True,
        USE_TZ=True,
        STATIC_ROOT=env.str("STATIC_ROOT", default=None),  # set where collectstatic runs (images)
        WHITENOISE_USE_FINDERS=True,  # admin assets served without a collectstatic step locally
        DATA_UPLOAD_MAX_MEMORY_SIZE=env.int("MAX_BODY_BYTES", default=1024 * 1024),
        JSON_MAX_DEPTH=env.int("JSON_MAX_DEPTH", default=32),  # request bodies nested deeper are a 400
        # Django's refusals in the contract's error shape too (shared.web.errors; handlers: shared.web.urls).
        CSRF_FAILURE_VIEW="shared.web.errors.csrf_failure",
        REDIS_URL=redis_url,
        REDIS_BACKOFF_SECONDS=env.float("REDIS_BACKOFF_SECONDS", default=5.0),
        REST_FRAMEWORK=_rest_framework(authentication=api_authentication, debug=debug),
        JWT=_jwt(env, keys),
        # Seconds a revocation-list read may take before the request goes on under the fail policy.
        AUTH_REVOCATION_TIMEOUT=env.float("AUTH_REVOCATION_TIMEOUT", default=0.25),
        SERVICE_CLIENT={"ID": service, "SECRET": client_secret},
        SPECTACULAR_SETTINGS={
            "TITLE": f"{service} API",
            "DESCRIPTION": API_DESCRIPTION,
            "VERSION": "1.0.0",
            "SERVE_INCLUDE_SCHEMA": False,
            "COMPONENT_SPLIT_REQUEST": True,
            **(openapi or {}),
        },
        LOGGING=logging_config(
            service=service,
            level=env.str("LOG_LEVEL", default="INFO"),
            json=env.str("LOG_FORMAT", default="json") == "json",
        ),
        SERVICE_URLS=_service_urls(env, downstreams, debug=debug),
        # Every service of the platform, for the bar linking their admins (shared.admin_ui.nav).
        PLATFORM_SERVICES=env.list("PLATFORM_SERVICES", default=[service]),
        # Read here so that a wrong exporter name fails every process at start, with the reason.
        TRACES_EXPORTER=tracing.exporter_name(),
        EMAIL_BACKEND=env.str("EMAIL_BACKEND", default="django.core.mail.backends.filebased.EmailBackend"),
        EMAIL_FILE_PATH=env.str("EMAIL_FILE_PATH", default=str(REPO_ROOT / "var" / "mail")),
        EMAIL_HOST=env.str("EMAIL_HOST", default="localhost"),
        EMAIL_PORT=env.int("EMAIL_PORT", default=25),
        DEFAULT_FROM_EMAIL=env.str("DEFAULT_FROM_EMAIL", default="Order platform <no-reply@example.com>"),
        EVENT_SUBSCRIPTIONS=subscriptions,
        # The version of each event type this service publishes (`EVENT_VERSIONS=order.created=2;a.b=3`;
        # unnamed types: 1). Raised only once every consumer reads the new version (docs/contracts.md).
        EVENT_VERSIONS=env.dict("EVENT_VERSIONS", cast={"value": int}, default={}),
        CIRCUIT_BREAKER_DOWNSTREAMS=downstreams,
        EVENTS_DELIVERY_LIMIT=delivery_limit,
        EVENTS_HANDLER_ATTEMPTS=env.int("EVENTS_HANDLER_ATTEMPTS", default=3),
        OUTBOX_SWEEP_MAX_BATCHES=env.int("OUTBOX_SWEEP_MAX_BATCHES", default=50),
        **partitioning,
        **_admin(env, service),
        **_celery(env, service, sorted(subscriptions), delivery_limit, beat),
    )
    # `extra` adds; a service that changes a shared setting does it in plain sight, where it applies these.
    if replaced := sorted(settings.keys() & (extra or {}).keys()):
        raise ImproperlyConfigured(f"extra= would replace shared settings {', '.join(replaced)}")
    return settings | (extra or {})
