"""Project wiring: settings, the root URLconf, the Celery app, WSGI and ASGI entry points."""
