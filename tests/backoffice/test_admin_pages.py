"""Administration pages: API keys shown once, staff roles and stores, rules and tiers, audit."""

from django.urls import reverse
from rest_framework.test import APIClient

from loyalty import roles
from loyalty.models import ApiKey, AuditLog, ProgramSettings, Tier, User


def test_a_new_api_key_is_shown_once_and_works(client_as, admin_user_, stores):
    client = client_as("admin")
    response = client.post(
        reverse("loyalty:apikey-list"), {"store": stores["MSK-01"].pk, "name": "Касса 1"}
    )
    raw = response.context["new_key"]
    assert raw in response.content.decode()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api.get("/api/v1/members?phone=%2B79123456789").status_code == 200
    again = client.get(reverse("loyalty:apikey-list"))
    assert raw not in again.content.decode()
    key = ApiKey.objects.get()
    client.post(reverse("loyalty:apikey-revoke", args=[key.pk]))
    assert api.get("/api/v1/members?phone=%2B79123456789").status_code == 401
    assert list(AuditLog.objects.order_by("id").values_list("action", flat=True)) == [
        "apikey.create",
        "apikey.revoke",
    ]


def test_staff_account_gets_its_role_and_stores(client_as, admin_user_, stores):
    response = client_as("admin").post(
        reverse("loyalty:staff-create"),
        {
            "username": "olga",
            "first_name": "Ольга",
            "last_name": "",
            "email": "olga@example.com",
            "is_active": "on",
            "role": roles.STORE_MANAGER,
            "stores": [stores["SPB-01"].pk],
            "password": "a-long-enough-Passw0rd",
        },
    )
    assert response.status_code == 302
    olga = User.objects.get(username="olga")
    assert list(olga.groups.values_list("name", flat=True)) == [roles.STORE_MANAGER]
    assert list(olga.stores.values_list("code", flat=True)) == ["SPB-01"]
    assert olga.check_password("a-long-enough-Passw0rd")
    assert olga.has_perm("loyalty.record_purchase")
    assert not olga.has_perm("loyalty.all_stores")


def test_a_store_manager_without_a_store_is_refused(client_as, admin_user_):
    response = client_as("admin").post(
        reverse("loyalty:staff-create"),
        {
            "username": "ivan",
            "role": roles.STORE_MANAGER,
            "password": "a-long-enough-Passw0rd",
            "is_active": "on",
        },
    )
    assert response.status_code == 200
    assert "stores" in response.context["form"].errors
    assert not User.objects.filter(username="ivan").exists()


def test_program_rules_change_the_engine_and_are_audited(client_as, admin_user_, pos):
    form = client_as("admin").get(reverse("loyalty:program")).context["form"]
    data = {name: value for name, value in form.initial.items() if value is not None}
    data["max_redeem_share"] = "0.200"
    response = client_as("admin").post(reverse("loyalty:program"), data)
    assert response.status_code == 302
    assert str(ProgramSettings.load().max_redeem_share) == "0.200"
    card = pos.enrol()["card_number"]
    pos.buy(card, "20000.00")
    error = pos.buy(card, "1000.00", redeem_points=201, expect=422)["error"]
    assert error["code"] == "redeem_limit_exceeded"
    entry = AuditLog.objects.get(action="program.edit")
    assert entry.after == {"max_redeem_share": "0.200"}


def test_tier_edit_keeps_perks_as_a_list(client_as, admin_user_):
    gold = Tier.objects.get(code="gold")
    response = client_as("admin").post(
        reverse("loyalty:tier-edit", args=[gold.pk]),
        {
            "code": "gold",
            "name": "Gold",
            "name_ru": "Золотой",
            "threshold": "50000",
            "earn_rate": "0.0700",
            "discount_percent": "5",
            "perks": ["free_delivery", "early_access"],
        },
    )
    assert response.status_code == 302
    gold.refresh_from_db()
    assert gold.perks == ["free_delivery", "early_access"]
    assert str(gold.discount_percent) == "5.00"


def test_audit_page_filters_by_action(client_as, admin_user_, support, make_member):
    from loyalty.engine.adjustments import adjust_points

    member = make_member("MSK-01")
    adjust_points(member_id=member.pk, points=10, reason="one", staff=support)
    response = client_as("admin").get(reverse("loyalty:audit-list"), {"action": "points."})
    entries = list(response.context["page"])
    assert [entry.action for entry in entries] == ["points.adjust"]
