"""The minimal Django + DRF floor: the product's models, no middleware, no auth (issue 9).

What the framework alone costs: the same purchase transaction through the ORM, with no API key,
no throttle, no idempotency, no rules.
"""

import os

import dj_database_url

SECRET_KEY = "bench-floor-only"  # noqa: S105  (a benchmark server on loopback)
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rest_framework",
    "phonenumber_field",
    "loyalty",
    "members",
    "messaging",  # the engine's outbox rows are its models (loyalty's ready() imports them)
]
MIDDLEWARE = []
ROOT_URLCONF = "bench.drf_floor.urls"
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench"),
        conn_max_age=600,
    )
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
}
