"""The four staff roles and the capabilities each carries.

Roles are Django groups created by a data migration from this table; a view asks for a
capability (``loyalty.view_members``), never for a role name, so a merchant may build other
groups in the admin.
"""

from django.utils.translation import gettext_lazy as _

STORE_MANAGER = "Store manager"
SUPPORT = "Support"
MARKETER = "Marketer"
ADMINISTRATOR = "Administrator"

ROLE_LABELS = {
    STORE_MANAGER: _("Store manager"),
    SUPPORT: _("Support"),
    MARKETER: _("Marketer"),
    ADMINISTRATOR: _("Administrator"),
}

ROLE_CAPABILITIES = {
    STORE_MANAGER: [
        "view_members",
        "enrol_member",
        "edit_member",
        "record_purchase",
        "adjust_points",
        "view_analytics",
    ],
    SUPPORT: [
        "view_members",
        "enrol_member",
        "edit_member",
        "adjust_points",
        "view_audit",
        "handle_complaints",
        "handle_personal_data",
        "all_stores",
    ],
    MARKETER: [
        "view_members",
        "manage_campaigns",
        "manage_surveys",
        "view_analytics",
        "all_stores",
    ],
    ADMINISTRATOR: [
        "view_members",
        "enrol_member",
        "edit_member",
        "record_purchase",
        "adjust_points",
        "adjust_points_unlimited",
        "view_audit",
        "handle_complaints",
        "handle_personal_data",
        "manage_campaigns",
        "manage_surveys",
        "view_analytics",
        "manage_program",
        "manage_staff",
        "manage_api_keys",
        "run_jobs",
        "all_stores",
    ],
}

# The program setting holding each role's largest points adjustment (either sign) without an
# administrator (loyalty.models.ProgramSettings; defaults 500, 2000 and 0).
ADJUSTMENT_LIMIT_FIELDS = {
    STORE_MANAGER: "adjust_limit_store_manager",
    SUPPORT: "adjust_limit_support",
    MARKETER: "adjust_limit_marketer",
}


def role_of(user):
    """The first role group of a user, or None (superusers count as administrators)."""
    if user.is_superuser:
        return ADMINISTRATOR
    # Kept on the user object, which lives for one request: a page asks more than once.
    if not hasattr(user, "_loyalty_role"):
        names = {group.name for group in user.groups.all()}
        roles = (ADMINISTRATOR, SUPPORT, MARKETER, STORE_MANAGER)
        user._loyalty_role = next((role for role in roles if role in names), None)
    return user._loyalty_role
