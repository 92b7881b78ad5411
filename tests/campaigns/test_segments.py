"""Segments: what each criterion keeps, counted exactly, and the segment pages."""

import datetime
from decimal import Decimal

import pytest

from campaigns.models import Segment
from loyalty.engine.refunds import refund_purchase
from loyalty.models import AuditLog, Tier
from members.segments import segment_count
from members.services import set_member_blocked
from tests.campaigns.conftest import at
from tests.helpers import session_queries

NOW = at("2025-03-01 12:00")

# Session (unless read from Redis), user, the user's and the group's permissions, the role for
# the menu, the count and the page (with each row's related figures in the same statement).
LIST_QUERIES = 6 + session_queries()


def count(**definition):
    return segment_count(definition, now=NOW)


def test_an_empty_segment_counts_every_active_member_but_not_a_blocked_one(enrol, support):
    enrol()
    enrol()
    blocked = enrol()
    set_member_blocked(member_id=blocked.pk, blocked=True, reason="fraud", staff=support)

    assert count() == 2


def test_enrolled_in_store_keeps_only_that_stores_members(enrol, stores):
    enrol(store="MSK-01")
    enrol(store="MSK-02")
    enrol(store="SPB-01")

    assert count(enrolled_stores=[stores["MSK-01"].pk, stores["SPB-01"].pk]) == 2


def test_bought_at_store_keeps_members_with_a_purchase_there(enrol, buy, stores):
    spb_buyer, msk_buyer, _never = enrol(), enrol(), enrol()
    buy(spb_buyer, "100.00", "2025-01-10 10:00", store="SPB-01")
    buy(msk_buyer, "100.00", "2025-01-10 10:00", store="MSK-01")

    assert count(bought_at_stores=[stores["SPB-01"].pk]) == 1


def test_tier_keeps_members_who_reached_it(enrol, buy):
    silver_member, _bronze = enrol(), enrol()
    buy(silver_member, "15000.00", "2025-01-10 10:00")  # reaches Silver at 15,000

    assert count(tiers=[Tier.objects.get(code="silver").pk]) == 1
    assert count(tiers=[Tier.objects.get(code="bronze").pk]) == 1


def test_enrolment_dates_include_both_whole_days(enrol):
    enrol(when="2024-12-31 23:59")
    enrol(when="2025-01-01 00:00")
    enrol(when="2025-01-31 23:59")
    enrol(when="2025-02-01 00:00")

    assert count(enrolled_from="2025-01-01", enrolled_to="2025-01-31") == 2


def test_lapsed_keeps_buyers_whose_last_purchase_is_older_than_n_days(enrol, buy):
    lapsed, recent, _never = enrol(), enrol(), enrol()
    buy(lapsed, "100.00", "2024-10-01 10:00")
    buy(recent, "100.00", "2024-10-01 10:00")
    buy(recent, "100.00", "2025-02-20 10:00")

    assert count(lapsed_days=90) == 1


def test_purchase_count_bounds_are_inclusive_over_the_activity_window(enrol, buy):
    once, twice, thrice, _never = enrol(), enrol(), enrol(), enrol()
    buy(once, "100.00", "2025-02-01 10:00")
    for when in ("2025-02-01 10:00", "2025-02-02 10:00"):
        buy(twice, "100.00", when)
    for when in ("2025-02-01 10:00", "2025-02-02 10:00", "2025-02-03 10:00"):
        buy(thrice, "100.00", when)
    buy(once, "100.00", "2024-06-01 10:00")  # outside the 90 days: not counted

    assert count(purchases_min=2, purchases_max=3) == 2
    assert count(purchases_min=2, purchases_max=2) == 1
    assert count(purchases_min=1, purchases_max=1, activity_days=30) == 1


def test_an_upper_bound_alone_keeps_members_who_did_not_buy(enrol, buy):
    light, heavy, _never = enrol(), enrol(), enrol()
    buy(light, "100.00", "2025-02-01 10:00")
    buy(heavy, "100.00", "2025-02-01 10:00")
    buy(heavy, "100.00", "2025-02-02 10:00")

    assert count(purchases_max=1) == 2
    assert count(purchases_min=0, purchases_max=0) == 1


def test_a_lower_bound_of_zero_alone_keeps_everyone(enrol, buy):
    """The form accepts "at least 0 purchases" alone; the count used to fail on it."""
    buy(enrol(), "100.00", "2025-02-01 10:00")
    enrol()

    assert count(purchases_min=0) == 2
    assert count(spend_min="0") == 2


def test_spend_bounds_count_purchases_net_of_refunds(enrol, buy, stores):
    big, refunded, small = enrol(), enrol(), enrol()
    buy(big, "5000.00", "2025-02-01 10:00")
    receipt = buy(refunded, "5000.00", "2025-02-01 10:00")
    refund_purchase(
        store=stores["MSK-01"],
        external_id=receipt["external_id"],
        refund_id="R-1",
        amount=Decimal("3000.00"),
        now=at("2025-02-02 10:00"),
    )
    buy(small, "500.00", "2025-02-01 10:00")

    assert count(spend_min="5000.00") == 1
    assert count(spend_min="1000.00", spend_max="2000.00") == 1
    assert count(spend_max="2000.00") == 2


def test_birthday_month_keeps_members_born_in_it(enrol):
    enrol(birth_date=datetime.date(1990, 3, 1))
    enrol(birth_date=datetime.date(1985, 3, 31))
    enrol(birth_date=datetime.date(1990, 4, 1))
    enrol()

    assert count(birthday_month=3) == 2


def test_marketing_consent_yes_and_no(enrol):
    enrol(consent=True)
    enrol(consent=True)
    enrol(consent=False)

    assert count(consent="yes") == 2
    assert count(consent="no") == 1


def test_has_an_email_yes_and_no(enrol):
    enrol(email="a@example.com")
    enrol()
    enrol()

    assert count(has_email="yes") == 1
    assert count(has_email="no") == 2


def test_every_member_has_a_phone(enrol):
    enrol()
    enrol()

    assert count(has_phone="yes") == 2
    assert count(has_phone="no") == 0


def test_criteria_combine_with_and(enrol, stores):
    enrol(store="MSK-01", consent=True)
    enrol(store="MSK-01", consent=False)
    enrol(store="SPB-01", consent=True)

    assert count(enrolled_stores=[stores["MSK-01"].pk], consent="yes") == 1


def test_an_impossible_date_in_a_stored_definition_is_ignored(enrol):
    enrol()

    assert count(enrolled_from="2025-02-30") == 1


# --- Pages -------------------------------------------------------------------------------------


def test_the_live_count_fragment_recounts_as_criteria_change(client_as, enrol, stores):
    enrol(store="MSK-01")
    enrol(store="MSK-01")
    enrol(store="SPB-01")
    client = client_as("marketer")

    everyone = client.get(
        "/campaigns/segments/new/", headers={"HX-Request": "true", "Accept-Language": "en"}
    )
    msk = client.get(
        "/campaigns/segments/new/",
        {"enrolled_stores": [stores["MSK-01"].pk]},
        headers={"HX-Request": "true", "Accept-Language": "en"},
    )

    assert everyone.status_code == 200
    assert 'data-testid="segment-count"' in everyone.text
    assert "3 members" in everyone.text
    assert "2 members" in msk.text
    assert "<html" not in msk.text


@pytest.mark.parametrize(("language", "gold"), [("en", "Gold"), ("ru", "Золотой")])
def test_the_segment_form_names_tiers_in_the_page_language(client_as, language, gold):
    page = client_as("marketer").get(
        "/campaigns/segments/new/", headers={"Accept-Language": language}
    )

    assert page.status_code == 200
    assert f"> {gold}</label>" in page.text or f">{gold}</label>" in page.text


def test_the_live_count_asks_to_check_criteria_that_do_not_parse(client_as, enrol):
    enrol()

    response = client_as("marketer").get(
        "/campaigns/segments/new/",
        {"purchases_min": "many"},
        headers={"HX-Request": "true", "Accept-Language": "en"},
    )

    assert "Check the criteria marked below." in response.text


def test_saving_a_segment_stores_its_criteria_and_audits_it(client_as, marketer, stores):
    response = client_as("marketer").post(
        "/campaigns/segments/new/",
        {"name": "Moscow, consent", "enrolled_stores": [stores["MSK-01"].pk], "consent": "yes"},
    )

    assert response.status_code == 302
    segment = Segment.objects.get()
    assert segment.definition == {"enrolled_stores": [stores["MSK-01"].pk], "consent": "yes"}
    entry = AuditLog.objects.get(action="segment.create")
    assert entry.actor == marketer
    assert entry.after == {"name": "Moscow, consent", "definition": segment.definition}


def test_changing_a_segment_audits_before_and_after(client_as, marketer):
    segment = Segment.objects.create(name="Old", definition={"consent": "yes"})

    client_as("marketer").post(f"/campaigns/segments/{segment.pk}/", {"name": "New"})

    entry = AuditLog.objects.get(action="segment.edit")
    assert entry.before == {"name": "Old", "definition": {"consent": "yes"}}
    assert entry.after == {"name": "New", "definition": {}}


@pytest.mark.parametrize(
    "criteria, field",
    [
        ({"enrolled_from": "2025-02-01", "enrolled_to": "2025-01-01"}, "enrolled_to"),
        ({"purchases_min": "5", "purchases_max": "2"}, "purchases_max"),
        ({"spend_min": "-1"}, "spend_min"),
        ({"birthday_month": "13"}, "birthday_month"),
        ({"lapsed_days": "0"}, "lapsed_days"),
        ({"name": ""}, "name"),
    ],
)
def test_a_bad_criterion_is_shown_on_the_form_and_nothing_is_saved(client_as, criteria, field):
    data = {"name": "Broken", **criteria}

    response = client_as("marketer").post("/campaigns/segments/new/", data)

    assert response.status_code == 422
    assert field in response.context["form"].errors
    assert Segment.objects.count() == 0
    assert AuditLog.objects.count() == 0


def test_the_segment_list_costs_the_same_queries_for_twice_the_rows(
    client_as, django_assert_num_queries
):
    client = client_as("marketer")
    for index in range(3):
        Segment.objects.create(name=f"S{index}")
    client.get("/campaigns/segments/")
    with django_assert_num_queries(LIST_QUERIES):
        assert client.get("/campaigns/segments/").status_code == 200
    for index in range(3, 6):
        Segment.objects.create(name=f"S{index}")
    with django_assert_num_queries(LIST_QUERIES):
        response = client.get("/campaigns/segments/")
    assert response.text.count("/campaigns/new/?segment=") == 6
