"""The Django admin (SPEC.md section 1): administrators only, the ledger read-only, and every
change made there going through the back-office's services, audited like the pages."""

from decimal import Decimal

import pytest
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from loyalty import roles
from loyalty.models import ApiKey, AuditLog, LedgerEntry, Store, Tier, User
from members.models import Member
from tests.factories import MemberFactory

CHANGE_LISTS = [
    f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"
    for model in admin.site._registry
    if model._meta.app_label not in {"auth"}
]


@pytest.fixture
def history(stores, admin_user_):
    """A member with an earning purchase and a manual adjustment, and an API key."""
    from loyalty.engine.adjustments import adjust_points
    from loyalty.engine.apikeys import create_api_key
    from loyalty.engine.purchases import record_purchase

    member = MemberFactory(store=stores["MSK-01"])
    record_purchase(
        store=stores["MSK-01"],
        card_number=member.card_number,
        external_id="A-1",
        amount=Decimal("1000.00"),
        occurred_at=timezone.now(),
    )
    adjust_points(member_id=member.pk, points=50, reason="Извинение", staff=admin_user_)
    create_api_key(store=stores["MSK-01"], name="Касса 1", staff=admin_user_)
    return member


@pytest.mark.parametrize("persona", ["manager", "support", "marketer"])
def test_only_administrators_reach_the_admin(client_as, persona, stores):
    client = client_as(persona)
    for url in [reverse("admin:index"), reverse("admin:loyalty_store_changelist")]:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))
    store = stores["MSK-01"]
    client.post(
        reverse("admin:loyalty_store_change", args=[store.pk]),
        {"code": "MSK-01", "name": "Захват", "city": "Москва", "time_zone": "Europe/Moscow"},
    )
    store.refresh_from_db()
    assert store.name != "Захват"


def test_every_table_opens_for_the_administrator_in_few_queries(
    client_as, history, django_assert_max_num_queries
):
    client = client_as("admin")
    assert client.get(reverse("admin:index")).status_code == 200
    for name in CHANGE_LISTS:
        with django_assert_max_num_queries(12):
            response = client.get(reverse(name))
        assert response.status_code == 200, name
    for model in [Member, LedgerEntry, ApiKey, Store]:
        row = model.objects.first()
        opts = model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[row.pk])
        assert client.get(url).status_code == 200, url


def test_the_ledger_cannot_be_changed_from_the_admin(client_as, history):
    client = client_as("admin")
    entry = LedgerEntry.objects.order_by("id").first()
    points = entry.points
    change = reverse("admin:loyalty_ledgerentry_change", args=[entry.pk])
    page = client.get(change).content.decode()
    assert 'name="_save"' not in page  # a view, not a form
    assert client.post(change, {"points": 999999}).status_code == 403
    assert client.get(reverse("admin:loyalty_ledgerentry_add")).status_code == 403
    delete = reverse("admin:loyalty_ledgerentry_delete", args=[entry.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    entry.refresh_from_db()
    assert entry.points == points
    changelist = client.post(
        reverse("admin:loyalty_ledgerentry_changelist"),
        {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"},
    )
    assert changelist.status_code in {200, 302}
    assert LedgerEntry.objects.filter(pk=entry.pk).exists()

    # A member is changed on the member's page, where the rules are: the admin links to it.
    member_page = client.get(reverse("admin:members_member_change", args=[history.pk]))
    assert 'name="_save"' not in member_page.content.decode()
    on_site = member_page.context["original"]
    assert admin.site._registry[Member].view_on_site(on_site) == reverse(
        "members:member-detail", args=[history.card_number]
    )


def test_a_store_changed_in_the_admin_is_audited_like_the_page(client_as, stores):
    store = stores["MSK-01"]
    name_before = store.name
    response = client_as("admin").post(
        reverse("admin:loyalty_store_change", args=[store.pk]),
        {
            "code": store.code,
            "name": "Тверская, 7",
            "city": store.city,
            "time_zone": store.time_zone,
            "kind": store.kind,
            "earn_rate": "7.00",
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    store.refresh_from_db()
    assert (store.name, store.earn_rate) == ("Тверская, 7", Decimal("7"))
    entry = AuditLog.objects.get(action="store.edit")
    assert entry.after["name"] == "Тверская, 7"
    assert Decimal(entry.after["earn_rate"]) == Decimal("7")
    assert entry.before["name"] == name_before != "Тверская, 7"


def test_a_tier_with_a_bad_threshold_is_refused_with_nothing_saved(client_as):
    count = Tier.objects.count()
    response = client_as("admin").post(
        reverse("admin:loyalty_tier_add"),
        {"code": "vip", "name": "VIP", "name_ru": "ВИП", "threshold": "-5", "earn_rate": "1"},
    )
    assert response.status_code == 200  # the form again, with its error
    assert response.context["adminform"].form.errors
    assert Tier.objects.count() == count
    assert not AuditLog.objects.filter(action__startswith="tier.").exists()


def test_a_staff_account_made_in_the_admin_gets_its_role_and_a_hashed_password(client_as, stores):
    client = client_as("admin")
    fields = {
        "username": "olga",
        "first_name": "Ольга",
        "last_name": "",
        "email": "olga@example.com",
        "is_active": "on",
        "role": roles.STORE_MANAGER,
        "stores": [stores["SPB-01"].pk],
        "password": "a-long-enough-Passw0rd",
    }
    assert client.post(reverse("admin:loyalty_user_add"), fields).status_code == 302
    olga = User.objects.get(username="olga")
    assert list(olga.groups.values_list("name", flat=True)) == [roles.STORE_MANAGER]
    assert list(olga.stores.values_list("code", flat=True)) == ["SPB-01"]
    assert olga.check_password("a-long-enough-Passw0rd")
    assert AuditLog.objects.filter(action="staff.create", object_id=str(olga.pk)).exists()

    # Saved again without a password: the old one still works (nothing saved "as typed").
    fields.update(password="", first_name="Ольга Петровна")
    change = reverse("admin:loyalty_user_change", args=[olga.pk])
    assert client.post(change, fields).status_code == 302
    olga.refresh_from_db()
    assert olga.first_name == "Ольга Петровна"
    assert olga.check_password("a-long-enough-Passw0rd")


def test_api_keys_are_revoked_from_the_admin_through_the_service(client_as, history):
    key = ApiKey.objects.get()
    response = client_as("admin").post(
        reverse("admin:loyalty_apikey_changelist"),
        {"action": "revoke", "_selected_action": [key.pk]},
    )
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert AuditLog.objects.filter(action="apikey.revoke").count() == 1
