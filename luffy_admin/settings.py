"""Settings for luffy-admin, read from the environment.

With no environment at all the project runs on an embedded default (a SQLite file and
kombu's filesystem broker under ``var/``) so a first ``make run`` works on a bare machine.
Production (``DJANGO_ENV=production``) refuses to start without ``DJANGO_SECRET_KEY``.
See ``.env.example`` for every variable.
"""

from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Where the embedded default keeps its SQLite file and broker folder.
VAR_DIR = Path(env.str("LUFFY_VAR_DIR", default=str(BASE_DIR / "var")))

DJANGO_ENV = env.str("DJANGO_ENV", default="local")
if DJANGO_ENV not in {"local", "production"}:
    raise ImproperlyConfigured(f"DJANGO_ENV must be 'local' or 'production', not {DJANGO_ENV!r}.")
IS_PRODUCTION = DJANGO_ENV == "production"

DEBUG = env.bool("DJANGO_DEBUG", default=False)

if IS_PRODUCTION:
    if not env.str("DJANGO_SECRET_KEY", default=""):
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_ENV=production.")
    SECRET_KEY = env.str("DJANGO_SECRET_KEY")
else:
    # A fixed key is fine for a local run; production requires its own (checked above).
    SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="django-insecure-luffy-admin-local-only")

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=[] if IS_PRODUCTION else ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_api_key",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "axes",
    "csp",
    "schedules",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # https://django-csp.readthedocs.io/en/latest/configuration.html (CONTENT_SECURITY_POLICY below)
    "csp.middleware.CSPMiddleware",
    # https://whitenoise.readthedocs.io/en/stable/django.html
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "schedules.middleware.QueryStringGuardMiddleware",
    "schedules.middleware.ApiNoStoreMiddleware",
    # Django's, with a database outage while saving the session a 503 (not a 400).
    "schedules.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "schedules.middleware.DatabaseUnavailableMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a lockout into its response.
    "axes.middleware.AxesMiddleware",
]

# Content-Security-Policy on every page (the admin and the Swagger UI docs page matter):
# scripts only from this site's own static files (the docs page loads its init script as a
# file, drf-spectacular's split view); inline styles allowed because the admin's templates and
# Swagger UI's use them, and styles cannot run code.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        # Swagger UI draws its icons as data: URIs.
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

ROOT_URLCONF = "luffy_admin.urls"
WSGI_APPLICATION = "luffy_admin.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The project's own pages (the landing page) and its admin base template (the favicon).
        "DIRS": [BASE_DIR / "luffy_admin" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# https://django-environ.readthedocs.io/en/latest/types.html#environ-env-db-url
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
# Bounded database waits. Every process: the server cancels a statement after
# LUFFY_DB_STATEMENT_TIMEOUT_MS (generous: migrations, beat's loads, test database set-up).
# The web process (gunicorn.conf.py, schedules/db_waits.py) uses LUFFY_DB_WEB_STATEMENT_TIMEOUT_MS
# instead and stops waiting for any answer, connect included, 0.5 s after it: a stopped
# (SIGSTOP) server never answers, and an alive one cancels its statement first.
LUFFY_DB_STATEMENT_TIMEOUT_MS = env.int("LUFFY_DB_STATEMENT_TIMEOUT_MS", default=30_000)
LUFFY_DB_WEB_STATEMENT_TIMEOUT_MS = env.int("LUFFY_DB_WEB_STATEMENT_TIMEOUT_MS", default=2000)
# celery beat with the fleet scheduler stops waiting for an answer after this long without a
# byte from the server (silence, not total time: a long load streams and is not cut), on every
# session of its own; a leader whose database stops answering steps down (docs/beat.md).
LUFFY_DB_BEAT_WAIT_SECONDS = env.float("LUFFY_DB_BEAT_WAIT_SECONDS", default=2.0)
# The run monitor likewise (schedules/monitor.py keeps its batch in memory meanwhile).
LUFFY_DB_MONITOR_WAIT_SECONDS = env.float("LUFFY_DB_MONITOR_WAIT_SECONDS", default=5.0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-PARAMKEYWORDS
    # A dead database must fail a request fast, not hang it; keepalives find a vanished peer
    # (host gone, network cut) on an idle persistent connection.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "connect_timeout": env.int("LUFFY_DB_CONNECT_TIMEOUT", default=2),
            "keepalives": 1,
            "keepalives_idle": env.int("LUFFY_DB_KEEPALIVES_IDLE", default=30),
            "keepalives_interval": env.int("LUFFY_DB_KEEPALIVES_INTERVAL", default=10),
            "keepalives_count": env.int("LUFFY_DB_KEEPALIVES_COUNT", default=3),
            "options": f"-c statement_timeout={LUFFY_DB_STATEMENT_TIMEOUT_MS}",
        }
    )
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # SQLite waits for a writer (beat, the web server) instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Throttle counts and login-failure bookkeeping live here. The default (memory) is per process:
# with several gunicorn workers or hosts set LUFFY_CACHE_URL to a shared cache (redis://...).
# https://django-environ.readthedocs.io/en/latest/types.html#environ-env-cache-url
CACHES = {"default": env.cache_url("LUFFY_CACHE_URL", default="locmemcache://")}

# Admin login lockout (django-axes): after LUFFY_LOGIN_FAILURE_LIMIT wrong passwords for one
# username from one address, that pair is refused (even with the right password) for
# LUFFY_LOGIN_COOLOFF_MINUTES. https://django-axes.readthedocs.io/en/latest/4_configuration.html
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env.int("LUFFY_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("LUFFY_LOGIN_COOLOFF_MINUTES", default=15))
# Username and address together: one attacker cannot lock every operator out from elsewhere.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# No start-up banner in every process's log (web, beat, worker, manage.py).
AXES_VERBOSE = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "luffy_admin" / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
if DEBUG:
    STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}

# Request bodies are small JSON documents; refuse anything larger early.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("LUFFY_MAX_BODY_BYTES", default=64 * 1024)
# /health answers from its last checks for this long: monitors polling it cost the broker and
# database one check per interval and process, however many there are.
LUFFY_HEALTH_CACHE_SECONDS = env.float("LUFFY_HEALTH_CACHE_SECONDS", default=1.5)
# Creates past this many schedules for one service are refused with 409.
LUFFY_MAX_SCHEDULES_PER_SERVICE = env.int("LUFFY_MAX_SCHEDULES_PER_SERVICE", default=100)

if IS_PRODUCTION:
    # https://docs.djangoproject.com/en/5.2/howto/deployment/checklist/
    # Trust X-Forwarded-Proto only behind a proxy that sets it (and strips it from clients);
    # trusted blindly, any client could claim HTTPS.
    if env.bool("DJANGO_TRUST_X_FORWARDED_PROTO", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^api/v1/task-scheduling/health/?$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
    if not SECURE_HSTS_PRELOAD:
        # Preloading binds the whole domain to HTTPS in browsers for good: the operator's call,
        # made with DJANGO_SECURE_HSTS_PRELOAD=true, not a default.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
    SECURE_CONTENT_TYPE_NOSNIFF = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
    # Beat's heartbeat (every LUFFY_BEAT_HEARTBEAT_SECONDS) is logged at DEBUG, not INFO.
    "filters": {"heartbeat_at_debug": {"()": "schedules.log_filters.HeartbeatAtDebug"}},
    "loggers": {
        name: {"filters": ["heartbeat_at_debug"]}
        for name in ("celery.beat", "celery.worker.strategy", "celery.app.trace", "schedules.beat.publisher")
    },
}

# --- Django REST framework ----------------------------------------------------------------
# https://www.django-rest-framework.org/api-guide/settings/
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "schedules.api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["schedules.api.permissions.ModelPermissionOrKeyScope"],
    # https://www.django-rest-framework.org/api-guide/throttling/ (counts in CACHES["default"])
    "DEFAULT_THROTTLE_CLASSES": [
        "schedules.api.throttles.ApiKeyRateThrottle",
        "schedules.api.throttles.SessionUserRateThrottle",
        "schedules.api.throttles.AnonymousRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "key": env.str("LUFFY_THROTTLE_KEY", default="1200/min"),
        "user": env.str("LUFFY_THROTTLE_USER", default="600/min"),
        # Per client address: /health polled every 2 s by a few monitors stays well under it.
        "anon": env.str("LUFFY_THROTTLE_ANON", default="120/min"),
    },
    "DEFAULT_PARSER_CLASSES": ["schedules.api.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    "DEFAULT_PAGINATION_CLASS": "schedules.api.pagination.PageNumberPagination",
    # The OpenAPI schema (/api/schema) describes the API; OPTIONS metadata would repeat it, and
    # DRF builds it from the read serializer, so every field of a create looked read-only.
    "DEFAULT_METADATA_CLASS": None,
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "schedules.api.exception_handler.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}

# https://drf-spectacular.readthedocs.io/en/latest/settings.html
SPECTACULAR_SETTINGS = {
    "TITLE": "luffy-admin task scheduling API",
    "DESCRIPTION": "Per-service Celery beat schedules for the luffy platform.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1/task-scheduling",
    # Swagger UI served from this app (drf-spectacular-sidecar), not from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "PREPROCESSING_HOOKS": ["schedules.api.urls.schema_paths_without_slash"],
    "ENUM_NAME_OVERRIDES": {
        "UpDownEnum": "schedules.api.serializers.utility.UP_DOWN",
        "LivenessEnum": "schedules.api.serializers.utility.LIVENESS",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "schedules.api.urls.schema_common_error_responses",
    ],
}

# --- Celery -----------------------------------------------------------------------------------
# https://docs.celeryq.dev/en/stable/django/first-steps-with-django.html
# A complete URL (host included): kombu warns "No hostname was supplied" for a bare "filesystem://".
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://localhost//")
# Every broker wait (connect, each read and write) ends after this many seconds, so a hung
# broker costs a request (/health, /run) that long at most.
LUFFY_BROKER_TIMEOUT_SECONDS = env.float("LUFFY_BROKER_TIMEOUT_SECONDS", default=2)
CELERY_BROKER_CONNECTION_TIMEOUT = LUFFY_BROKER_TIMEOUT_SECONDS
CELERY_BROKER_TRANSPORT_OPTIONS = {}
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # https://docs.celeryq.dev/en/stable/userguide/configuration.html#broker-transport-options
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "socket_connect_timeout": LUFFY_BROKER_TIMEOUT_SECONDS,
        "socket_timeout": LUFFY_BROKER_TIMEOUT_SECONDS,
    }
elif CELERY_BROKER_URL.startswith(("amqp://", "amqps://", "pyamqp://")):
    # py-amqp's socket read and write bounds (kombu passes transport options to its Connection).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "read_timeout": LUFFY_BROKER_TIMEOUT_SECONDS,
        "write_timeout": LUFFY_BROKER_TIMEOUT_SECONDS,
    }
elif CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's filesystem transport needs no server: beat and worker share one folder.
    # https://docs.celeryq.dev/projects/kombu/en/stable/reference/kombu.transport.filesystem.html
    (VAR_DIR / "broker").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(VAR_DIR / "broker"),
        "data_folder_out": str(VAR_DIR / "broker"),
        "control_folder": str(VAR_DIR / "broker-control"),
    }
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_ENABLE_UTC = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A send to an unreachable broker fails within seconds instead of blocking a request.
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-publish-retry-policy
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 1,
}
# https://django-celery-beat.readthedocs.io/en/latest/
# The fleet scheduler reads django-celery-beat's tables; `celery beat -S django` runs the stock one.
CELERY_BEAT_SCHEDULER = "schedules.scheduler:FleetScheduler"
# No leader lock: exactly one beat may run (always so on SQLite). See README, "Fleet scheduler".
LUFFY_BEAT_SINGLE = env.bool("LUFFY_BEAT_SINGLE", default=False)
# How long the record of each run (schedules.Dispatch: the send and its outcome) is kept.
LUFFY_BEAT_DISPATCH_RETENTION_HOURS = env.int("LUFFY_BEAT_DISPATCH_RETENTION_HOURS", default=24)
# Run outcomes (docs/runs.md): `manage.py monitor_runs` marks a run `lost` when no worker
# reported receiving it within LUFFY_RUN_LOST_SECONDS, and /health reports the monitor "stale"
# when it has not written its heartbeat (every 5 s while listening) for LUFFY_MONITOR_STALE_SECONDS.
LUFFY_RUN_LOST_SECONDS = env.int("LUFFY_RUN_LOST_SECONDS", default=300)
LUFFY_MONITOR_STALE_SECONDS = env.int("LUFFY_MONITOR_STALE_SECONDS", default=30)
# Client addresses that may read /metrics without a staff session or API key (a Prometheus server).
LUFFY_METRICS_ALLOW_IPS = env.list("LUFFY_METRICS_ALLOW_IPS", default=[])
# On PostgreSQL beat takes changes in as migration 0009's triggers announce them (LISTEN/NOTIFY,
# within ~50 ms); off, or where LISTEN cannot work (PgBouncer in transaction pooling), it polls
# every 0.5 s. https://www.postgresql.org/docs/current/sql-notify.html
LUFFY_BEAT_LISTEN = env.bool("LUFFY_BEAT_LISTEN", default=True)
# A file beat touches about once a second, leader or standby, for a container health check
# (docker-compose.yml reads its age). Unset: no file.
LUFFY_BEAT_LIVENESS_FILE = env.str("LUFFY_BEAT_LIVENESS_FILE", default="") or None
# Write last_run_at back after every dispatch so the API's last_run lags by seconds, not minutes.
CELERY_BEAT_SYNC_EVERY = 1
# Beat wakes at least this often, which bounds how late it notices a change.
CELERY_BEAT_MAX_LOOP_INTERVAL = env.int("CELERY_BEAT_MAX_LOOP_INTERVAL", default=1)
# Beat liveness: beat sends a heartbeat every LUFFY_BEAT_HEARTBEAT_SECONDS to
# LUFFY_BEAT_HEARTBEAT_QUEUE; the worker that runs it records the time, which /health reads.
# That queue needs a worker with luffy-admin's tasks (the demo worker, or
# `celery -A luffy_admin worker -Q luffy-admin`); luffy's own workers do not know the task.
# 0 turns the heartbeat off (/health then reports beat "unknown").
LUFFY_BEAT_HEARTBEAT_SECONDS = env.int("LUFFY_BEAT_HEARTBEAT_SECONDS", default=10)
LUFFY_BEAT_HEARTBEAT_QUEUE = env.str("LUFFY_BEAT_HEARTBEAT_QUEUE", default="luffy-admin")
# /health reports beat "stale" when no heartbeat ran for this long (three missed heartbeats).
LUFFY_BEAT_HEARTBEAT_STALE_SECONDS = env.int(
    "LUFFY_BEAT_HEARTBEAT_STALE_SECONDS", default=3 * (LUFFY_BEAT_HEARTBEAT_SECONDS or 10)
)
# Beat copies this entry into django-celery-beat's PeriodicTask table each time it starts.
# https://docs.celeryq.dev/en/stable/userguide/periodic-tasks.html#entries
CELERY_BEAT_SCHEDULE = (
    {
        "luffy-admin:beat-heartbeat": {
            "task": "luffy_admin.beat_heartbeat",
            "schedule": LUFFY_BEAT_HEARTBEAT_SECONDS,
            # A heartbeat that waited longer than the "stale" age proves nothing: workers drop it.
            "options": {"queue": LUFFY_BEAT_HEARTBEAT_QUEUE, "expire_seconds": LUFFY_BEAT_HEARTBEAT_STALE_SECONDS},
        },
    }
    if LUFFY_BEAT_HEARTBEAT_SECONDS
    else {}
)

# --- luffy-admin ------------------------------------------------------------------------------
# Queues that luffy's workers consume; every catalogue entry must name one of them.
LUFFY_QUEUES = env.list("LUFFY_QUEUES", default=["default"])

# The task catalogue: what an operator may schedule. A request names a task by `name`;
# the Celery task name and queue come from here, never from the request.
LUFFY_TASK_CATALOGUE = env.json(
    "LUFFY_TASK_CATALOGUE",
    default=[
        {
            "name": "fetch_logs",
            "task": "src.services.tasks.fetch_and_process_logs",
            "queue": "default",
            "description": "Fetch the service's logs and cluster new errors.",
            "min_interval_seconds": 60,
            "max_interval_seconds": 86400,
        },
        {
            "name": "generate_rca",
            "task": "src.services.tasks.generate_rca_for_clusters",
            "queue": "default",
            "description": "Generate root-cause analyses for the service's open error clusters.",
            "min_interval_seconds": 60,
            "max_interval_seconds": 86400,
        },
        {
            "name": "index_code",
            "task": "src.services.tasks.index_code_repository",
            "queue": "default",
            "description": "Index the service's code repository for RCA lookups.",
            "min_interval_seconds": 60,
            "max_interval_seconds": 86400,
        },
    ],
)
