"""A service that meets a busy member once: the first call raises Busy, later calls are real."""

from loyalty.engine.errors import Busy


def busy_once(monkeypatch, module, name):
    """Replace ``module.name`` by a function that raises Busy on its first call and calls the
    real one after that; returns the list of calls (their outcome: "busy" or "ran")."""
    real = getattr(module, name)
    calls = []

    def flaky(*args, **kwargs):
        if not calls:
            calls.append("busy")
            raise Busy("The member is busy with another operation. Try again.")
        calls.append("ran")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, flaky)
    return calls
