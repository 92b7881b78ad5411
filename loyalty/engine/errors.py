"""The engine's domain error: a stable code (the API's error code) and a translated message."""


class LoyaltyError(Exception):
    status_code = 422

    def __init__(self, code, message, *, fields=None, status_code=None):
        super().__init__(str(message))
        self.code = code
        self.message = message
        self.fields = fields or {}
        if status_code is not None:
            self.status_code = status_code


class Busy(LoyaltyError):
    """A lock wait ran out (or a conflict outlived its retries): the same call a moment later
    will likely succeed. The API answers 503 with Retry-After; a Celery task retries it."""

    status_code = 503

    def __init__(self, message):
        super().__init__("busy", message)
