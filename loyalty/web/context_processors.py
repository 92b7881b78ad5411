"""Navigation: each role sees only the sections it may use."""

from django.urls import reverse
from django.utils.functional import SimpleLazyObject
from django.utils.translation import gettext_lazy as _

from loyalty.roles import ROLE_LABELS, role_of

# (URL name, label, permission needed or None for every signed-in user)
NAVIGATION = [
    ("home", _("Home"), None),
    ("members:member-list", _("Members"), "loyalty.view_members"),
    ("purchases:purchase-list", _("Purchases"), "loyalty.view_members"),
    ("complaints:complaint-list", _("Complaints"), "loyalty.handle_complaints"),
    ("campaigns:campaign-list", _("Campaigns"), "loyalty.manage_campaigns"),
    ("analytics:dashboard", _("Analytics"), "loyalty.view_analytics"),
    ("surveys:nps-dashboard", _("NPS"), "loyalty.view_analytics"),
    ("messaging:partner-settlement", _("Partners"), "loyalty.manage_program"),
    ("loyalty:audit-list", _("Audit log"), "loyalty.view_audit"),
    ("loyalty:program", _("Program"), "loyalty.manage_program"),
    ("loyalty:store-list", _("Stores"), "loyalty.manage_program"),
    ("loyalty:staff-list", _("Staff"), "loyalty.manage_staff"),
    ("loyalty:apikey-list", _("API keys"), "loyalty.manage_api_keys"),
    ("webhooks:subscription-list", _("Webhooks"), "loyalty.manage_api_keys"),
    ("members:import", _("Import and export"), "loyalty.manage_program"),
    ("messaging:job-list", _("Jobs"), "loyalty.run_jobs"),
]


def navigation(request):
    """The menu and the user's role, worked out only if the template shows them: an htmx
    fragment (search as you type, a table page) does not, and skips the work."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": []}
    return {
        "nav_items": SimpleLazyObject(lambda: _items(request.path, user)),
        "user_role": SimpleLazyObject(lambda: ROLE_LABELS.get(role_of(user), "")),
    }


def _items(path, user):
    items = []
    for url_name, label, permission in NAVIGATION:
        if permission and not user.has_perm(permission):
            continue
        url = reverse(url_name)
        current = path == url if url_name == "home" else path.startswith(url)
        items.append({"url": url, "label": label, "name": url_name, "current": current})
    if user.is_superuser:
        items.append(
            {
                "url": reverse("admin:index"),
                "label": _("Django admin"),
                "name": "admin",
                "current": False,
            }
        )
    return items
