"""Changes administrators make to stores, staff, rules and tiers: saved and audited together."""

from django.contrib.auth.models import Group
from django.db import transaction

from loyalty.models import audit
from loyalty.roles import ROLE_CAPABILITIES


def _plain(value):
    if value is None or isinstance(value, bool | int | str | list):
        return value
    return str(value)


@transaction.atomic(durable=True)
def save_with_audit(*, form, staff, action):
    """Save a ModelForm's instance and audit which fields changed, before and after."""
    instance = form.instance
    creating = instance.pk is None
    changed = [name for name in form.changed_data if name in form.cleaned_data]
    before = None if creating else {name: _plain(form.initial.get(name)) for name in changed}
    saved = form.save()
    after = {name: _plain(form.cleaned_data[name]) for name in changed}
    if creating or changed:
        audit(
            actor=staff,
            action=f"{action}.{'create' if creating else 'edit'}",
            obj=saved,
            before=before,
            after=after,
        )
    return saved


@transaction.atomic(durable=True)
def save_staff_user(*, user, role, stores, password, staff):
    """Create or change a staff account: its role (one of the four groups) and its stores."""
    creating = user.pk is None
    before = None
    if not creating:
        before = {
            "role": ", ".join(user.groups.values_list("name", flat=True)),
            "stores": ", ".join(user.stores.values_list("code", flat=True)),
            "is_active": user.is_active,
        }
    if password:
        user.set_password(password)
    user.save()
    if role not in ROLE_CAPABILITIES:
        raise ValueError(f"unknown role {role!r}")
    user.groups.set([Group.objects.get(name=role)])
    user.__dict__.pop("_loyalty_role", None)  # role_of's copy of the old role
    user.stores.set(stores)
    audit(
        actor=staff,
        action="staff.create" if creating else "staff.edit",
        obj=user,
        before=before,
        after={
            "role": role,
            "stores": ", ".join(store.code for store in stores),
            "is_active": user.is_active,
            "password_changed": bool(password),
        },
    )
    return user
