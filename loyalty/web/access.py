"""Server-side access checks for every back-office view."""

import functools

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied


def require(*permissions):
    """Signed-in users holding every permission; others go to login (anonymous) or get 403."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not request.user.has_perms(permissions):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        wrapper.required_permissions = permissions
        return wrapper

    return decorator


def is_fragment(request):
    """HTMX asked for a piece of the page, not the whole page (boosted requests get it all)."""
    return bool(request.htmx) and not request.htmx.boosted
