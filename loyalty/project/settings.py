"""Settings for the loyalty back-office, read from the environment.

With no environment at all this is the embedded mode: SQLite and a server-less Celery broker
under ``var/``. Production sets SECRET_KEY, ALLOWED_HOSTS, DATABASE_URL and REDIS_URL. Every
setting is listed with its default in the README. A malformed value stops the start with one
clear line (see ``manage.py``), never a traceback.
"""

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))


def env_str(name, default=""):
    return os.environ.get(name, default).strip()


def env_bool(name, default=False):
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def env_int(name, default):
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None


def env_list(name, default=""):
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


# API calls and the member page prepare the statements a connection repeats (PostgreSQL): see
# loyalty.engine.db.prepared_statements. Off behind a pooler that cannot keep prepared
# statements (PgBouncer before 1.22, or without max_prepared_statements in transaction mode).
PREPARED_STATEMENTS = env_bool("DB_PREPARED_STATEMENTS", True)


def database_from_url(name, url):
    """Parse a postgres:// or sqlite:// URL into Django's DATABASES entry, strictly."""
    import dj_database_url

    scheme = urlsplit(url).scheme
    if scheme not in ("postgres", "postgresql", "sqlite"):
        raise ImproperlyConfigured(
            f"{name} must start with postgres:// or sqlite://, not {scheme or url!r}"
        )
    try:
        # Health checks cost a round trip on every request; a connection broken by a database
        # restart fails one request per process instead (DB_HEALTH_CHECKS=true to turn them on).
        config = dj_database_url.parse(
            url, conn_max_age=600, conn_health_checks=env_bool("DB_HEALTH_CHECKS", False)
        )
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} is not a valid database URL: {exc}") from None
    if scheme == "sqlite":
        config["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}
        config["CONN_MAX_AGE"] = 0
    elif not config.get("NAME"):
        raise ImproperlyConfigured(f"{name} names no database: {url!r}")
    else:
        # A lock wait longer than this fails (and becomes a retryable "busy" error) instead of
        # piling up requests behind one slow transaction.
        timeout_ms = env_int("DB_LOCK_TIMEOUT_MS", 5000)
        options = f"-c lock_timeout={timeout_ms}"
        # PostgreSQL compiles a plan whose cost estimate is high (JIT): 50-180 ms spent on
        # segment counts of 100-700 ms at a million members, and nothing here runs long enough
        # to win it back. Off unless DB_JIT=true.
        if not env_bool("DB_JIT", False):
            options += " -c jit=off"
        config.setdefault("OPTIONS", {})["options"] = options
        if env_bool("DB_PREPARED_STATEMENTS", True):
            # Parameters travel apart from the SQL (server-side binding), so that statements
            # can be prepared where that is safe (loyalty.engine.db.prepared_statements).
            config["OPTIONS"]["server_side_binding"] = True
    return config


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is off (set SECRET_KEY)")
    SECRET_KEY = "insecure-debug-only-key"  # noqa: S105  (DEBUG only, never in production)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
TESTING = env_bool("TESTING", False)

INSTALLED_APPS = [
    "loyalty.apps.LoyaltyAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "phonenumber_field",
    "axes",
    "csp",
    "loyalty",
    "members",
    "campaigns",
    "surveys",
    "messaging",
    "analytics",
    "webhooks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "loyalty.web.middleware.ApiBodyLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "loyalty.web.middleware.ApiLanguageMiddleware",
    # Before anything that reads the URL into the database (and in the caller's language).
    "loyalty.web.middleware.HostileUrlMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",
    "loyalty.web.middleware.ServiceDownMiddleware",
]

# What API calls go through (loyalty/project/wsgi.py): no session, cookie, form or HTML in them.
API_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "loyalty.web.middleware.ApiBodyLimitMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "loyalty.web.middleware.ApiLanguageMiddleware",
    # Before anything that reads the URL into the database (and in the caller's language).
    "loyalty.web.middleware.HostileUrlMiddleware",
    "loyalty.web.middleware.PreparedStatementsMiddleware",
    "loyalty.web.middleware.ServiceDownMiddleware",
]

ROOT_URLCONF = "loyalty.project.urls"
WSGI_APPLICATION = "loyalty.project.wsgi.application"
AUTH_USER_MODEL = "loyalty.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "loyalty.web.context_processors.navigation",
            ],
        },
    }
]

# --- Database --------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": database_from_url("DATABASE_URL", DATABASE_URL)}
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
            # Without IMMEDIATE, concurrent writers fail at once with "database is locked".
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
        }
    }
DATABASE_REPLICA_URL = env_str("DATABASE_REPLICA_URL")
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = database_from_url("DATABASE_REPLICA_URL", DATABASE_REPLICA_URL)
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["loyalty.engine.db.ReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and Celery ------------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL and urlsplit(REDIS_URL).scheme not in ("redis", "rediss"):
    raise ImproperlyConfigured(
        f"REDIS_URL must start with redis:// or rediss://, not {REDIS_URL!r}"
    )


def shared_cache(redis_url):
    """The cache on Redis. Nothing in it is the only copy, so an outage slows requests down and
    never fails them (loyalty.engine.cache): a Redis that does not answer within these
    timeouts counts as down for that call."""
    return {
        "default": {
            "BACKEND": "loyalty.engine.cache.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "loyalty"),
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 1.0},
        }
    }


if REDIS_URL:
    CACHES = shared_cache(REDIS_URL)
    CELERY_BROKER_URL = REDIS_URL
    # Sessions read from Redis, written through to the database (and read from it while Redis
    # is down). Only with a shared cache: a per-process cache would keep a logged-out session
    # alive in the other processes.
    SESSION_ENGINE = "loyalty.web.sessions"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # A task whose worker died comes back after this many seconds (acks_late below).
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 300),
        # How often a worker looks for such tasks. kombu's default scans on every tenth tick
        # of 10 s, so a killed worker's task waited up to 100 s past the visibility timeout
        # (tests/faults/test_worker_killed.py): every tick, and the tick configurable.
        "unacked_restore_interval": env_int("CELERY_RESTORE_SECONDS", 10),
        "unacked_restore_throttle": 1,
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CELERY_QUEUE_DIR = VAR_DIR / "celery" / "queue"
    for folder in (CELERY_QUEUE_DIR, VAR_DIR / "celery" / "control"):
        folder.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_QUEUE_DIR),
        "data_folder_out": str(CELERY_QUEUE_DIR),
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
    }

CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celery" / "beat-schedule")
CELERY_TIMEZONE = "UTC"
# One beat for the whole deployment; each job also takes a database lock, so two runs of one job
# never overlap even if a second beat is started by mistake. Times are UTC (Moscow is UTC+3).
CELERY_BEAT_SCHEDULE = {
    "expire_points": {
        "task": "loyalty.jobs.tasks.run_job",
        "schedule": crontab(hour=0, minute=5),
        "args": ["expire_points"],
    },
    "expiry_reminders": {
        "task": "loyalty.jobs.tasks.run_job",
        "schedule": crontab(hour=7, minute=0),
        "args": ["expiry_reminders"],
    },
    "activate_points": {
        "task": "loyalty.jobs.tasks.run_job",
        "schedule": crontab(minute=15),
        "args": ["activate_points"],
    },
    "reevaluate_tiers": {
        "task": "loyalty.jobs.tasks.run_job",
        "schedule": crontab(hour=0, minute=30),
        "args": ["reevaluate_tiers"],
    },
    "birthday_offers": {
        "task": "loyalty.jobs.tasks.run_job",
        "schedule": crontab(hour=6, minute=0),
        "args": ["birthday_offers"],
    },
    "renew_memberships": {
        "task": "loyalty.jobs.tasks.run_job",
        "schedule": crontab(hour=1, minute=0),
        "args": ["renew_memberships"],
    },
    "dispatch_nps": {
        "task": "loyalty.jobs.tasks.run_job",
        "schedule": crontab(minute=40),
        "args": ["dispatch_nps"],
    },
    "win_back": {
        "task": "loyalty.jobs.tasks.run_job",
        "schedule": crontab(hour=10, minute=0),
        "args": ["win_back"],
    },
    "campaign_surveys": {
        "task": "loyalty.jobs.tasks.run_job",
        "schedule": crontab(minute=50),
        "args": ["campaign_surveys"],
    },
    "send_campaigns": {
        "task": "loyalty.jobs.tasks.run_job",
        "schedule": crontab(),
        "args": ["send_campaigns"],
    },
    # After the night's expiry and tier jobs, so yesterday's figures include them.
    "refresh_analytics": {
        "task": "loyalty.jobs.tasks.run_job",
        "schedule": crontab(hour=2, minute=30),
        "args": ["refresh_analytics"],
    },
    "deliver_messages": {
        "task": "messaging.tasks.deliver_messages",
        "schedule": 60.0,
    },
    "deliver_webhooks": {
        "task": "webhooks.tasks.deliver_webhooks",
        "schedule": 60.0,
    },
    "credit_referrers": {
        "task": "loyalty.tasks.credit_referrers",
        "schedule": 300.0,
    },
    # Imports and survey sends saved while the broker could not take their message
    # (loyalty.web.taskqueue).
    "send_waiting_imports": {
        "task": "members.tasks.send_waiting_imports",
        "schedule": 60.0,
    },
    "send_waiting_survey_sends": {
        "task": "surveys.tasks.send_waiting_survey_sends",
        "schedule": 60.0,
    },
}
# A job's database claim (SQLite) older than this is taken over: its process died.
JOB_LOCK_STALE_SECONDS = env_int("JOB_LOCK_STALE_SECONDS", 6 * 3600)
# A webhook delivery being sent is another worker's only after this long (its worker died).
WEBHOOK_LEASE_SECONDS = env_int("WEBHOOK_LEASE_SECONDS", 120)
# A worker older than this without a heartbeat counts as down in /healthz.
WORKER_HEARTBEAT_SECONDS = env_int("WORKER_HEARTBEAT_SECONDS", 15)

# --- Authentication ---------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
if TESTING:
    # Argon2 is deliberately slow; tests create many users.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Failed logins: lock out a (username, IP) pair after 5 failures for 15 minutes.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
# Sign-in records are cleared with `manage.py axes_reset` (or by time), not read in the admin:
# their columns are English and they are no program data.
AXES_ENABLE_ADMIN = False

# --- Internationalisation ---------------------------------------------------------------------
LANGUAGE_CODE = "ru"
LANGUAGES = [("ru", _("Russian")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
LANGUAGE_COOKIE_NAME = "language"
TIME_ZONE = env_str("TIME_ZONE", "Europe/Moscow")
USE_I18N = True
USE_TZ = True
USE_THOUSAND_SEPARATOR = True
CURRENCY = env_str("CURRENCY", "RUB")

# --- Static files -----------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG or TESTING
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
MEDIA_ROOT = VAR_DIR / "media"
WHITENOISE_USE_FINDERS = DEBUG or TESTING
# Files browsers and crawlers ask for at the site root (/favicon.ico), served as they are.
WHITENOISE_ROOT = BASE_DIR / "static" / "root"

# --- E-mail -----------------------------------------------------------------------------------
EMAIL_HOST = env_str("EMAIL_HOST")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 25)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = VAR_DIR / "mail"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "loyalty@localhost")
# SMS: the default backend records each message in the message log and sends nothing; a
# provider is one class with send(phone, text) (see messaging/sms.py).
SMS_BACKEND = env_str("SMS_BACKEND", "messaging.sms.RecordingBackend")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- REST API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["loyalty.api.auth.ApiKeyAuthentication"],
    "DEFAULT_THROTTLE_CLASSES": ["loyalty.api.auth.ApiKeyThrottle"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["loyalty.api.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "loyalty.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "COERCE_DECIMAL_TO_STRING": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Loyalty API",
    "DESCRIPTION": (
        "Enrol members, quote and record purchases, refund, read balances.\n\n"
        "Authenticate with `Authorization: Bearer <key>` (one key per store or partner). "
        "Amounts are JSON strings of ASCII digits with a dot and at most two places "
        '(`"1000.00"`, `"1000"`); a JSON number, a sign, an exponent (`"1e3"`), spaces '
        '(`" 100 "`), a comma, leading zeros or other digits (`"１００"`) are refused with 400 '
        "naming the field. When a purchase gives `lines`, their quantity × unit_price, each "
        "rounded half up to the kopeck, must add up to `amount` exactly. Points are integers; "
        "times are ISO 8601 with a zone. Every error answers "
        '`{"error": {"code": "...", "message": "...", "fields": {...}}}`: 400 invalid input, '
        "401/403 authentication and permission, 404, 409 conflicts, 413 body over 2 MiB, "
        "415 not JSON, 422 business rules, 429 throttled and 503 busy or unavailable (both "
        "with Retry-After). Repeating a purchase or refund with the same external_id or "
        "refund_id and body returns the first answer and changes nothing."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and its page are public: a wrong key sent along (a fuzzer's, a tool's) is not
    # looked at, so it cannot turn them into a 401.
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # Without deep links an operation's summary is one button, not a link inside a button
    # (axe-core: nested-interactive).
    # The schemas stay in /api/v1/schema/: listed here they added a second heading tree.
    "SWAGGER_UI_SETTINGS": {"deepLinking": False, "defaultModelsExpandDepth": -1},
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "loyalty.api.schema.document_error_headers",
    ],
}
# Largest request body accepted (the API refuses anything bigger with 400).
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# --- Security ---------------------------------------------------------------------------------
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG and not TESTING)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG and not TESTING)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG or TESTING else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
# HSTS preload is a one-way commitment for the whole domain; the merchant opts in, not us.
SILENCED_SYSTEM_CHECKS = ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}

# Requests per API key (DRF rate syntax); 429 beyond it.
API_THROTTLE_RATE = env_str("API_THROTTLE_RATE", "6000/min")

# The address members reach the site at, for links in messages (survey links).
SITE_URL = env_str("SITE_URL", "http://localhost:8000")
