"""Settings shared by every environment; everything that differs between machines comes from the environment."""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


SECRET_KEY = env_str("SECRET_KEY", "dev-only-insecure-secret-key-change-me")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "channels",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "mozilla_django_oidc",
    "django_prometheus",
    # the house (ARCHITECTURE.md), lowest layer first
    "apps.core",
    "apps.tenants",
    "apps.stations",
    "apps.customers",
    "apps.tariffs",
    "apps.sessions",
    "apps.billing",
    "apps.energy",
    "apps.analytics",
    "apps.reports",
    "apps.search",
    "apps.ocpp",
    "apps.roaming",
    "apps.demo",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # every answer under /api/ is JSON in the one error shape; body size limit (apps/core/api/middleware.py)
    "apps.core.api.middleware.ApiErrorMiddleware",
    # every answer under /ocpi/ is the OCPI envelope (apps/roaming/ocpi/middleware.py)
    "apps.roaming.ocpi.middleware.OcpiEnvelopeMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "apps.core.api.middleware.ApiCommonMiddleware",  # CommonMiddleware without slash redirects under /api/
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "apps.tenants.middleware.ConsoleTimeZoneMiddleware",  # admin pages in the user's zone (apps/tenants/middleware.py)
    "apps.tenants.middleware.ConsoleLanguageMiddleware",  # admin pages in the user's language (same module)
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "evplatform.urls"
ASGI_APPLICATION = "evplatform.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.tenants.branding.console_branding",
            ],
        },
    },
]

# --------------------------------------------------------------------------- data stores
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", "postgres://postgres@localhost:5432/evplatform"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 0),
        conn_health_checks=True,
    )
}
DATABASES["default"]["ENGINE"] = "django_prometheus.db.backends.postgresql"
# a streaming replica for exports, analytics and search (apps/core/replica.py); tests mirror it onto the primary
if env_str("DATABASE_REPLICA_URL", ""):
    DATABASES["replica"] = dj_database_url.parse(
        env_str("DATABASE_REPLICA_URL", ""), conn_max_age=env_int("DB_CONN_MAX_AGE", 0), conn_health_checks=True
    )
    DATABASES["replica"]["ENGINE"] = "django_prometheus.db.backends.postgresql"
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["apps.core.replica.ReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")

CACHES = {
    "default": {
        "BACKEND": "apps.core.redis_cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "evp"),
    }
}

# The cache of hot reads (apps/core/cache.py: driver station search, a charger's tenant and settings on the OCPP
# path, ...) on the cache above; off (`HOT_READ_CACHE=0`) every read goes to PostgreSQL as without it.
HOT_READ_CACHE = env_bool("HOT_READ_CACHE", True)

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py 8 reads with a 5 s socket timeout by default, the same as channels_redis' blocking
            # BZPOPMIN: idle consumers then die with "Timeout reading" (seen under daphne). No socket timeout
            # at all: with one, redis-py writes through asyncio.wait_for, which on Python 3.11 swallows a
            # cancellation arriving as the write completes, and a consumer whose socket closed while its
            # channel-layer connection was being opened hung until daphne killed it (application close
            # timeout). Dead connections are found by TCP keepalive; connecting still times out.
            "hosts": [
                {"address": REDIS_URL, "socket_timeout": None, "socket_connect_timeout": 5, "socket_keepalive": True}
            ],
            "prefix": env_str("CHANNEL_LAYER_PREFIX", "evp-asgi"),
            "capacity": 1000,
            "expiry": 30,
        },
    }
}

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {}
CELERY_BEAT_SCHEDULE["ocpp-mark-offline"] = {"task": "stations.mark_offline", "schedule": 60.0}
CELERY_BEAT_SCHEDULE["ocpp-provision-passwords"] = {"task": "stations.provision_passwords", "schedule": 600.0}
CELERY_BEAT_SCHEDULE["ocpp-purge-message-log"] = {"task": "ocpp.purge_message_log", "schedule": 3600.0}
# time-partitioned tables (apps/core/partitions.py): table -> partition column; beat keeps a week of days ahead
PARTITIONED_TABLES = {
    "ocpp_messagelog": "created_at",
    "stations_statusevent": "timestamp",
    "charging_metervalue": "timestamp",
    "analytics_sessionfact": "at",
}
# retention of time-partitioned tables, in days (0: keep everything): beat's core.maintain_partitions drops each day
# partition whose whole day is older (a catalog change, no row-by-row delete). The frame log has its own
# (OCPP_MESSAGE_LOG_RETENTION_DAYS, ocpp.purge_message_log).
METER_VALUE_RETENTION_DAYS = env_int("METER_VALUE_RETENTION_DAYS", 0)  # the evidence under CDRs: kept by default
# KPI facts: the KPI buckets keep their sums; the facts serve the by-vehicle report of a period
SESSION_FACT_RETENTION_DAYS = env_int("SESSION_FACT_RETENTION_DAYS", 0)
PARTITION_RETENTION_DAYS = {
    "charging_metervalue": METER_VALUE_RETENTION_DAYS,
    "analytics_sessionfact": SESSION_FACT_RETENTION_DAYS,
}
CELERY_BEAT_SCHEDULE["core-maintain-partitions"] = {"task": "core.maintain_partitions", "schedule": 3600.0}
CELERY_BEAT_SCHEDULE["analytics-evaluate-alerts"] = {"task": "analytics.evaluate_alerts", "schedule": 60.0}
CELERY_BEAT_SCHEDULE["analytics-rollup"] = {"task": "analytics.rollup", "schedule": 60.0}
CELERY_BEAT_SCHEDULE["analytics-retry-webhooks"] = {"task": "analytics.retry_webhooks", "schedule": 30.0}
CELERY_BEAT_SCHEDULE["analytics-platform-metrics"] = {"task": "analytics.sample_platform_metrics", "schedule": 15.0}
CELERY_BEAT_SCHEDULE["charging-expire-reservations"] = {"task": "charging.expire_reservations", "schedule": 60.0}
CELERY_BEAT_SCHEDULE["charging-enforce-limits"] = {"task": "charging.enforce_limits", "schedule": 30.0}
CELERY_BEAT_SCHEDULE["charging-flag-too-long"] = {"task": "charging.flag_too_long", "schedule": 300.0}
CELERY_BEAT_SCHEDULE["charging-close-stale"] = {"task": "charging.close_stale", "schedule": 60.0}
CELERY_BEAT_SCHEDULE["energy-recompute-all"] = {"task": "energy.recompute_all", "schedule": 60.0}
CELERY_BEAT_SCHEDULE["reports-purge-exports"] = {"task": "reports.purge_exports", "schedule": 3600.0}
CELERY_BEAT_SCHEDULE["reports-render-lines"] = {"task": "reports.render_lines", "schedule": 15.0}
# the previous month's invoices, daily: idempotent, so later runs only pick up what an earlier one could not issue
CELERY_BEAT_SCHEDULE["billing-monthly-invoicing"] = {"task": "billing.invoicing_run_month", "schedule": 86400.0}
CELERY_BEAT_SCHEDULE["billing-capture-reconcile"] = {"task": "billing.capture_reconcile", "schedule": 300.0}
CELERY_BEAT_SCHEDULE["roaming-push-sweep"] = {"task": "roaming.push_sweep", "schedule": 10.0}  # OCPI pushes
# commands we sent CPOs for our drivers: TIMEOUT when no result came in time (apps/roaming/ocpi/emsp_commands.py)
CELERY_BEAT_SCHEDULE["roaming-emsp-commands-expire"] = {"task": "roaming.emsp_commands_expire", "schedule": 30.0}
# OCPI pulls of CPO partners that push nothing (apps/roaming/ocpi/pull.py)
CELERY_BEAT_SCHEDULE["roaming-pull-sweep"] = {
    "task": "roaming.pull_sweep",
    "schedule": float(env_str("OCPI_PULL_SWEEP_S", "60")),
}
# Hubject as EMP: EVSE data deltas and statuses into the partner catalog (apps/roaming/oicp/emp.py)
CELERY_BEAT_SCHEDULE["roaming-oicp-pull-sweep"] = {
    "task": "roaming.oicp_pull_sweep",
    "schedule": float(env_str("OICP_PULL_SWEEP_S", "300")),
}
# Hubject, daily: our tokens compared with what Hubject holds, its CDRs of two days with ours (apps/roaming/oicp/)
CELERY_BEAT_SCHEDULE["roaming-oicp-daily-sweep"] = {
    "task": "roaming.oicp_daily_sweep",
    "schedule": float(env_str("OICP_DAILY_SWEEP_S", "86400")),
}

# --------------------------------------------------------------------------- events (transactional outbox)
# apps/core/outbox.py: published events are rows of core_outboxdelivery, delivered by Celery on their own queue
EVENTS_DELIVERY = env_str("EVENTS_DELIVERY", "celery")  # "inline": in the publishing thread after commit (tests)
# CELERY_QUEUE_PREFIX: several platforms (or test runs) sharing one Redis keep their queues apart
CELERY_QUEUE_PREFIX = env_str("CELERY_QUEUE_PREFIX", "")
CELERY_TASK_DEFAULT_QUEUE = CELERY_QUEUE_PREFIX + "celery"
EVENTS_OUTBOX_QUEUE = env_str("EVENTS_OUTBOX_QUEUE", CELERY_QUEUE_PREFIX + "events")
EVENTS_OUTBOX_KICK_KEY = env_str("EVENTS_OUTBOX_KICK_KEY", "evp:outbox:kick")
EVENTS_OUTBOX_MAX_ATTEMPTS = env_int("EVENTS_OUTBOX_MAX_ATTEMPTS", 10)  # then dead-lettered (admin)
EVENTS_OUTBOX_RETRY_BASE_S = float(env_str("EVENTS_OUTBOX_RETRY_BASE_S", "5"))  # 5 s, 10 s, 20 s ... 15 min
EVENTS_OUTBOX_RETENTION_HOURS = env_int("EVENTS_OUTBOX_RETENTION_HOURS", 1)  # delivered rows
EVENTS_OUTBOX_DEAD_RETENTION_DAYS = env_int("EVENTS_OUTBOX_DEAD_RETENTION_DAYS", 30)
# One queue per kind of work, so that workers can be given to each (Procfile, docker/compose.yaml): a 10M-row export
# never waits in front of a smart-charging recompute or an OCPP side effect. "celery" keeps the rest (analytics,
# invitations). A task sent with an explicit queue (tests, OCPI_TASK_QUEUE) goes there instead.
CELERY_TASK_ROUTES = {
    "core.outbox_deliver": {"queue": EVENTS_OUTBOX_QUEUE},
    "core.outbox_purge": {"queue": EVENTS_OUTBOX_QUEUE},
    **{
        pattern: {"queue": CELERY_QUEUE_PREFIX + queue}
        for pattern, queue in [
            ("stations.*", "ocpp"),
            ("ocpp.*", "ocpp"),
            ("charging.*", "ocpp"),
            ("energy.*", "energy"),
            ("reports.*", "exports"),
            ("billing.*", "billing"),
            ("roaming.*", "roaming"),
        ]
    },
}
OCPI_TASK_QUEUE = env_str("OCPI_TASK_QUEUE", CELERY_QUEUE_PREFIX + "roaming")
CELERY_MONITORED_QUEUES = [
    CELERY_TASK_DEFAULT_QUEUE,
    EVENTS_OUTBOX_QUEUE,
    *(CELERY_QUEUE_PREFIX + q for q in ["ocpp", "energy", "exports", "billing", "roaming"]),
]
# the sweep catches lost wake-ups; a sweep older than its period is dropped (a stopped worker finds one, not 700)
CELERY_BEAT_SCHEDULE["core-outbox-sweep"] = {
    "task": "core.outbox_deliver",
    "schedule": 5.0,
    "options": {"queue": EVENTS_OUTBOX_QUEUE, "expires": 5.0},
}
CELERY_BEAT_SCHEDULE["core-outbox-purge"] = {
    "task": "core.outbox_purge",
    "schedule": 600.0,
    "options": {"queue": EVENTS_OUTBOX_QUEUE},
}

# --------------------------------------------------------------------------- auth
AUTH_USER_MODEL = "tenants.User"
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/admin/login/"
# where people reach this platform (links in e-mails, e.g. staff invitations)
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "http://127.0.0.1:8000")
STAFF_INVITATION_DAYS = env_int("STAFF_INVITATION_DAYS", 7)
LOGIN_REDIRECT_URL = "/admin/"
LOGOUT_REDIRECT_URL = "/admin/login/"

# OIDC (Keycloak-compatible). Off unless OIDC_RP_CLIENT_ID and the provider endpoints are set.
OIDC_RP_CLIENT_ID = env_str("OIDC_RP_CLIENT_ID")
OIDC_RP_CLIENT_SECRET = env_str("OIDC_RP_CLIENT_SECRET")
OIDC_OP_AUTHORIZATION_ENDPOINT = env_str("OIDC_OP_AUTHORIZATION_ENDPOINT")
OIDC_OP_TOKEN_ENDPOINT = env_str("OIDC_OP_TOKEN_ENDPOINT")
OIDC_OP_USER_ENDPOINT = env_str("OIDC_OP_USER_ENDPOINT")
OIDC_OP_JWKS_ENDPOINT = env_str("OIDC_OP_JWKS_ENDPOINT")
OIDC_RP_SIGN_ALGO = env_str("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = env_str("OIDC_RP_SCOPES", "openid email profile")
OIDC_TENANT_CLAIM = env_str("OIDC_TENANT_CLAIM", "tenants")
OIDC_ROLE_CLAIM = env_str("OIDC_ROLE_CLAIM", "roles")
OIDC_ENABLED = bool(OIDC_RP_CLIENT_ID and OIDC_OP_AUTHORIZATION_ENDPOINT and OIDC_OP_TOKEN_ENDPOINT)
if OIDC_ENABLED:
    AUTHENTICATION_BACKENDS.append("apps.tenants.oidc.TenantOIDCBackend")

# --------------------------------------------------------------------------- API
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.tenants.authentication.ApiKeyAuthentication",
        *(["apps.tenants.oidc.TenantOIDCAuthentication"] if OIDC_ENABLED else []),
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["apps.tenants.permissions.TenantRolePermission"],
    "DEFAULT_PAGINATION_CLASS": "apps.core.api.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["apps.core.api.filters.FilterBackend"],  # one name per field, unknown ones refused
    "DEFAULT_PARSER_CLASSES": ["apps.core.api.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "apps.core.api.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "apps.core.api.schema.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

# Limits of API input (README "Conventions"): body sizes (413 past them), JSON nesting, list lengths.
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 1024 * 1024)
API_MAX_UPLOAD_BYTES = env_int("API_MAX_UPLOAD_BYTES", 32 * 1024 * 1024)  # multipart (CSV imports)
API_MAX_JSON_DEPTH = 32
API_MAX_LIST_ITEMS = 1000

SPECTACULAR_SETTINGS = {
    "TITLE": "EV charging platform API",
    "DESCRIPTION": (
        "White-label CPO/eMSP back office. Authenticate with `Authorization: Api-Key <key>` "
        "(per-tenant API keys), a session cookie, or an OIDC bearer token. Every error has the shape "
        "`{code, message, fields}`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "apps.core.api.schema.postprocess"],
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "InvoiceStatusEnum": "apps.billing.models.InvoiceStatus",
        "PaymentStatusEnum": "apps.billing.models.PaymentStatus",
        "PayoutStatusEnum": "apps.billing.models.PayoutStatus",
        "BillingPartyEnum": "apps.billing.models.Party",
        "AlertKindEnum": "apps.analytics.models.AlertKind",
        "AlertStatusEnum": "apps.analytics.models.AlertStatus",
        "WebhookDeliveryStatusEnum": "apps.analytics.models.DeliveryStatus",
        "InvoiceKindEnum": "apps.billing.models.InvoiceKind",  # "kind" also names the alert kinds
        "ChargePointStatusEnum": "apps.stations.models.ChargePointStatus",
        "CommandStatusEnum": "apps.stations.models.CommandStatus",
        "SecurityProfileEnum": "apps.stations.models.SecurityProfile",  # security_profile and its pending one
        "SessionStatusEnum": "apps.sessions.models.SessionStatus",
        "ReservationStatusEnum": "apps.sessions.models.ReservationStatus",
        "TokenTypeEnum": "apps.customers.models.TokenType",
        "RoamingPartnerStatusEnum": "apps.roaming.models.PartnerStatus",
        "OcpiRoleEnum": "apps.roaming.models.Role",
        "CredentialsTokenKindEnum": "apps.roaming.models.TokenKind",
    },
}

# --------------------------------------------------------------------------- i18n, files
LANGUAGE_CODE = "en"
# the languages of the console, documents and e-mails (README "Languages"): catalogs in locale/<code>/, compiled
# to .mo by `make` (scripts/compile_messages.py)
LANGUAGES = [("en", "English"), ("de", "Deutsch"), ("fr", "Français")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
# the admin's zone for a user whose browser did not report one and whose tenants do not share one
CONSOLE_TIME_ZONE = env_str("CONSOLE_TIME_ZONE", "Europe/Berlin")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT: Path | None = Path(env_str("STATIC_ROOT", str(BASE_DIR / ".data" / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / ".data" / "media")))

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "noreply@evplatform.local")

# --------------------------------------------------------------------------- logging
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOG_FORMAT = env_str("LOG_FORMAT", "text")  # "json" for one JSON object per line
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json" if LOG_FORMAT == "json" else "text"}
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        "ocpp": {"level": "WARNING"},  # the ocpp package logs every frame at INFO; our frame log is the MessageLog
        "weasyprint.progress": {"level": "WARNING"},  # seven INFO lines per rendered PDF
    },
}

# --------------------------------------------------------------------------- platform
API_KEY_PREFIX = "evp"
# dotted paths of apps.customers.authorization.RoamingAuthorizer implementations, asked in order about
# tokens we do not know (the roaming apps add theirs): OCPI real-time authorization at the token's eMSP
ROAMING_AUTHORIZERS: list[str] = [
    "apps.roaming.authorizer.OcpiAuthorizer",
    "apps.roaming.oicp.authorizer.OicpAuthorizer",
]
OCPI_AUTHORIZE_TIMEOUT = float(env_str("OCPI_AUTHORIZE_TIMEOUT", "5"))  # seconds a charger's Authorize waits
# OCPI 2.2.1 (apps/roaming/ocpi): our public base URL as partners reach it (empty: taken from each request; set it
# behind a proxy, and for registering with partners from the admin, where there is no request to take it from),
# the page size of every list, the timeout of calls to partners, and (when not empty) the only hosts we call
OCPI_BASE_URL = env_str("OCPI_BASE_URL", "")
OCPI_PAGE_LIMIT = int(env_str("OCPI_PAGE_LIMIT", "100"))
OCPI_HTTP_TIMEOUT = float(env_str("OCPI_HTTP_TIMEOUT", "10"))
# CPO role: a partner driver's running session is PATCHed (kwh, cost) at most every OCPI_SESSION_PUSH_INTERVAL s;
# its start and end are never held back
OCPI_SESSION_PUSH_INTERVAL = float(env_str("OCPI_SESSION_PUSH_INTERVAL", "60"))
# eMSP role: a CPO partner's module is pulled (GET with date_from) every OCPI_PULL_INTERVAL_S unless it pushed to us
# meanwhile; date_from is the last successful pull's start less OCPI_PULL_OVERLAP_S (clock skew between platforms)
OCPI_PULL_INTERVAL_S = float(env_str("OCPI_PULL_INTERVAL_S", "900"))
OCPI_PULL_OVERLAP_S = float(env_str("OCPI_PULL_OVERLAP_S", "60"))
OCPI_OUTBOUND_HOSTS: list[str] = [h for h in env_str("OCPI_OUTBOUND_HOSTS", "").split(",") if h]
# eMSP commands: seconds we wait, beyond the CPO's own `timeout`, for a command's CommandResult before TIMEOUT
OCPI_COMMAND_RESULT_MARGIN = float(env_str("OCPI_COMMAND_RESULT_MARGIN", "30"))

# --------------------------------------------------------------------------- OCPP (apps.ocpp, apps.stations)
# a slug: unknown charger ids connecting to /ocpp/<id> are registered there as Pending (empty = refused)
OCPP_AUTO_REGISTER_TENANT = env_str("OCPP_AUTO_REGISTER_TENANT")
OCPP_OFFLINE_FACTOR = 2.5  # offline after heartbeat_interval x this without any frame
# data quality: a session running (or having run) longer than this is suspicious ("too_long")
CHARGING_SESSION_TOO_LONG_HOURS = env_int("CHARGING_SESSION_TOO_LONG_HOURS", 24)
# a running session with no news (no meter value by the charger's clock, no change by ours) for this long never got
# its StopTransaction: the beat job closes it, priced from its last meter value and flagged closed_without_stop
CHARGING_SESSION_CLOSE_AFTER_HOURS = env_int("CHARGING_SESSION_CLOSE_AFTER_HOURS", 48)
# once a charger said a session's transaction is over (Available/Preparing connector, BootNotification), its
# StopTransaction (which it may deliver from its queue after reconnecting) is awaited this long before the session is
# closed without it; a start of the same token elsewhere closes it at once
CHARGING_SESSION_CLOSE_GRACE_SECONDS = env_int("CHARGING_SESSION_CLOSE_GRACE_SECONDS", 900)
OCPP_MESSAGE_LOG = env_bool("OCPP_MESSAGE_LOG", True)
OCPP_MESSAGE_LOG_RETENTION_DAYS = env_int("OCPP_MESSAGE_LOG_RETENTION_DAYS", 30)
OCPP_MESSAGE_LOG_FLUSH_MS = env_int("OCPP_MESSAGE_LOG_FLUSH_MS", 500)
# seconds a charger's WebSocket handshake may take, waiting for its turn included: daphne's connect timeout and
# autobahn's opening-handshake timeout (both set from this by evplatform/server.py, which every daphne command
# line runs), and the handshake gate's patience (a handshake still queued at half of it is refused with 503)
OCPP_HANDSHAKE_TIMEOUT = env_int("OCPP_HANDSHAKE_TIMEOUT", 30)
OCPP_HANDSHAKE_CONCURRENCY = env_int("OCPP_HANDSHAKE_CONCURRENCY", 128)  # handshakes at once per process
# the least handshakes a second a process counts on (it counts on more when it measured more over the last 5 s): the
# turns it gives the chargers it refuses (503 + Retry-After) in a reconnect storm follow one another at that rate
# (apps/ocpp/consumers.Gate). In storms of 10,000 chargers (3,000 charging) the process let 200-380 a second through
# with the 0.5 ms switch interval (evplatform/server.py); counting on 200 then left it idle for seconds between the
# queue it had and the turns it had given (all back within 71.2 s); on 250 all were back within 55.2 and 58.8 s
# (benchmarks/ocpp_bench.py --storm --warm, 2026-12-07).
# Before that interval it let ~140-170 a second through, and counting on 300 brought the refused back faster than it
# could boot them (the event loop's turns grew to 1-4 s, 9,494 of 10,000 back by the end of the run, 585 errors).
OCPP_HANDSHAKE_RATE = env_int("OCPP_HANDSHAKE_RATE", 250)
# daphne's access log lines of chargers' WebSockets (connect, close, refusal: 3 lines per connection); off, the
# platform records those itself (evplatform/server.QuietChargerSockets)
OCPP_WS_ACCESS_LOG = env_bool("OCPP_WS_ACCESS_LOG", False)
OCPP_LISTEN_BACKLOG = env_int("OCPP_LISTEN_BACKLOG", 4096)  # connections the kernel queues for daphne (server.py)
# seconds a charger's WebSocket may be silent before daphne pings it, and then waits for the pong before it closes
# the socket (a half-open TCP connection is found within their sum). daphne's 20 s meant 500 pings and 500 pongs a
# second for 10,000 chargers, more frames than their OCPP messages (evplatform/server.py)
OCPP_WS_PING_INTERVAL = env_int("OCPP_WS_PING_INTERVAL", 120)
OCPP_WS_PING_TIMEOUT = env_int("OCPP_WS_PING_TIMEOUT", 30)
# BootNotifications a process records at once; past that (a fleet rebooting at once) a charger is answered Pending
# with an interval drawn from OCPP_BOOT_RETRY_SECONDS and boots again then, as OCPP 1.6 intends (apps/ocpp/central.py)
OCPP_BOOT_CONCURRENCY = env_int("OCPP_BOOT_CONCURRENCY", 64)
OCPP_BOOT_RETRY_SECONDS = (env_int("OCPP_BOOT_RETRY_MIN_SECONDS", 10), env_int("OCPP_BOOT_RETRY_MAX_SECONDS", 60))
# at a close, frames the charger sent before it are still applied, answered (if the socket is open) and logged:
# at most this many seconds and frames, so a dead socket cannot hold a process (daphne's application close
# timeout is set above it by evplatform/server.py)
OCPP_CLOSE_DRAIN_SECONDS = env_int("OCPP_CLOSE_DRAIN_SECONDS", 5)
OCPP_CLOSE_DRAIN_FRAMES = env_int("OCPP_CLOSE_DRAIN_FRAMES", 1000)
# security profiles 2 and 3 behind a TLS-terminating proxy (apps/ocpp/tls.py): the proxies' addresses or networks whose
# X-Forwarded-Proto and client-certificate header are believed (empty: none, only daphne's own `ocpptls:` endpoint)
OCPP_TRUSTED_PROXIES = env_list("OCPP_TRUSTED_PROXIES")
# earlier SECRET_KEY values: tenant CA keys encrypted with them stay readable (apps/stations/certificates.py)
OCPP_CA_KEY_SECRETS = env_list("OCPP_CA_KEY_SECRETS")
# OICP (Hubject): earlier SECRET_KEY values that keep stored client keys readable (apps/roaming/oicp/credentials.py),
# and how long a call to Hubject may take (Hubject's own budget for partners is 10 s)
OICP_KEY_SECRETS = env_list("OICP_KEY_SECRETS")
OICP_TIMEOUT_SECONDS = env_int("OICP_TIMEOUT_SECONDS", 10)
# Hubject's calls to us: the proxy's verified client certificate subject must contain this (empty: none taken)
OICP_INBOUND_CLIENT_DN = env_str("OICP_INBOUND_CLIENT_DN", "")
OCPP_PROXY_CLIENT_CERT_HEADER = env_str("OCPP_PROXY_CLIENT_CERT_HEADER", "X-Client-Cert")  # URL-encoded PEM
# base URL chargers use to download firmware and upload diagnostics (the platform's public HTTP address)
OCPP_FILES_BASE_URL = env_str("OCPP_FILES_BASE_URL", "http://127.0.0.1:8000")
