"""The minimal Django + DRF floor: the product's models and nothing else (issues 9 and 18).

What a framework user would write for the same reads and writes: no middleware, no
authentication, permission or throttle classes, JSON in and out only, autocommit (no
transaction per request), the apps the models need and no other.
"""

import os

import dj_database_url

SECRET_KEY = "bench-floor-only"  # noqa: S105  (a benchmark server on loopback)
DEBUG = False
ALLOWED_HOSTS = ["*"]
# The models' apps (their foreign keys reach auth's users and messaging's outbox) and no other:
# DRF itself needs no entry (only its browsable API and templates would).
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "loyalty",
    "members",
    "messaging",  # the engine's outbox rows are its models (loyalty's ready() imports them)
]
MIDDLEWARE = []
ROOT_URLCONF = "bench.drf_floor.urls"
DATABASES = {
    "default": {
        # The product's persistent connections, and nothing of its own: autocommit, no
        # transaction around each request, no health check.
        **dj_database_url.parse(
            os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench"),
            conn_max_age=600,
        ),
        "ATOMIC_REQUESTS": False,
        "AUTOCOMMIT": True,
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "loyalty.User"
USE_TZ = True
TIME_ZONE = "Europe/Moscow"
USE_I18N = False
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_THROTTLE_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
    "UNAUTHENTICATED_TOKEN": None,
}
