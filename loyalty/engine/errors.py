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
