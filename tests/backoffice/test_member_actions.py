"""Enrol, edit, adjust, block and merge from the back-office: rules, errors and the audit log."""

from django.urls import reverse

from loyalty.engine.ledger import ledger_drift
from loyalty.models import AuditLog, LedgerEntry, Purchase
from members.models import Member


def test_enrol_normalises_the_phone_and_records_consent_with_its_text(client_as, manager, stores):
    response = client_as("manager").post(
        reverse("members:member-enrol"),
        {
            "phone": "8 (912) 000-11-22",
            "first_name": "Анна",
            "store": stores["MSK-01"].pk,
            "language": "ru",
            "marketing_consent": "on",
        },
        HTTP_ACCEPT_LANGUAGE="ru",
    )
    member = Member.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("members:member-detail", args=[member.card_number])
    assert str(member.phone) == "+79120001122"
    assert member.marketing_consent is True
    # The text the customer was shown, in the language of the page.
    assert member.consent_text.startswith("Я соглашаюсь получать предложения")
    assert member.enrolled_store.code == "MSK-01"
    assert AuditLog.objects.get().action == "member.enrol"


def test_enrolling_a_known_phone_is_a_form_error_and_creates_nothing(
    client_as, manager, stores, make_member
):
    existing = make_member("MSK-01")
    response = client_as("manager").post(
        reverse("members:member-enrol"),
        {"phone": str(existing.phone), "store": stores["MSK-01"].pk, "language": "ru"},
    )
    assert response.status_code == 200
    assert "phone" in response.context["form"].errors
    assert Member.objects.count() == 1


def test_phone_check_warns_while_typing(client_as, manager, make_member):
    existing = make_member("MSK-01")
    response = client_as("manager").get(
        reverse("members:phone-check"),
        {"phone": str(existing.phone)},
        HTTP_HX_REQUEST="true",
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert "Already a member" in response.content.decode()
    assert existing.card_number in response.content.decode()


def test_adjustment_within_the_limit_is_applied_and_audited(client_as, support, make_member):
    member = make_member("MSK-01")
    response = client_as("support").post(
        reverse("members:member-adjust", args=[member.card_number]),
        {"points": 150, "reason": "Задержка доставки"},
    )
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.points_balance == 150
    entry = AuditLog.objects.get(action="points.adjust")
    assert entry.reason == "Задержка доставки"
    assert entry.actor == support
    assert entry.before == {"points_balance": 0, "points_debt": 0}


def test_adjustment_above_the_role_limit_is_refused(client_as, manager, make_member):
    member = make_member("MSK-01")
    response = client_as("manager").post(
        reverse("members:member-adjust", args=[member.card_number]),
        {"points": 501, "reason": "goodwill"},
    )
    assert response.status_code == 422
    assert "points" in response.context["adjust_form"].errors
    assert LedgerEntry.objects.count() == 0


def test_adjustment_needs_a_reason(client_as, support, make_member):
    member = make_member("MSK-01")
    response = client_as("support").post(
        reverse("members:member-adjust", args=[member.card_number]), {"points": 10, "reason": ""}
    )
    assert response.status_code == 422
    assert "reason" in response.context["adjust_form"].errors


def test_block_stops_purchases_and_unblock_restores_them(client_as, support, make_member, pos):
    member = make_member("MSK-01")
    client = client_as("support")
    client.post(reverse("members:member-block", args=[member.card_number]), {"reason": "lost"})
    member.refresh_from_db()
    assert member.status == "blocked"
    assert pos.buy(member.card_number, "100.00", expect=422)["error"]["code"] == "member_blocked"
    client.post(reverse("members:member-block", args=[member.card_number]), {"reason": "found"})
    member.refresh_from_db()
    assert member.status == "active"
    assert [a.action for a in AuditLog.objects.order_by("id")][-2:] == [
        "member.block",
        "member.unblock",
    ]


def test_edit_changes_data_and_keeps_before_and_after(client_as, support, make_member):
    member = make_member("MSK-01", first_name="Ольга")
    client_as("support").post(
        reverse("members:member-edit", args=[member.card_number]),
        {
            "phone": str(member.phone),
            "first_name": "Олег",
            "last_name": "",
            "email": "",
            "birth_date": "",
            "language": "ru",
        },
    )
    member.refresh_from_db()
    assert member.first_name == "Олег"
    entry = AuditLog.objects.get(action="member.edit")
    assert entry.before == {"first_name": "Ольга"}
    assert entry.after == {"first_name": "Олег"}


def test_merge_moves_purchases_and_points_and_nothing_is_lost(client_as, support, make_member):
    keep = make_member("MSK-01", "1000.00")  # 30 points
    duplicate = make_member("SPB-01", "2000.00", "500.00")  # 60 + 15 points
    response = client_as("support").post(
        reverse("members:member-merge", args=[keep.card_number]),
        {"duplicate_card": duplicate.card_number, "reason": "Две карты у одного человека"},
    )
    assert response.status_code == 302
    keep.refresh_from_db()
    duplicate.refresh_from_db()
    assert keep.points_balance == 105
    assert duplicate.points_balance == 0
    assert duplicate.status == "merged"
    assert duplicate.merged_into == keep
    assert Purchase.objects.filter(member=keep).count() == 3
    assert list(ledger_drift()) == []
    assert AuditLog.objects.filter(action="member.merge").count() == 1


def test_a_merged_card_leads_to_the_member_it_was_merged_into(client_as, support, make_member, pos):
    keep = make_member("MSK-01")
    duplicate = make_member("MSK-01")
    client_as("support").post(
        reverse("members:member-merge", args=[keep.card_number]),
        {"duplicate_card": duplicate.card_number, "reason": "duplicate"},
    )
    body = pos.buy(duplicate.card_number, "1000.00")
    assert body["earned_points"] == 30
    keep.refresh_from_db()
    assert keep.points_balance == 30
