"""The lists' filters (django-filter): each narrows its list, and a value it refuses answers
the page with the filter's error in the reader's language, never a 500."""

import pytest
from django.urls import reverse

from loyalty.engine.adjustments import adjust_points
from members.services import set_member_blocked
from surveys.defaults import install_default_surveys
from surveys.models import ComplaintCategory, Survey
from surveys.services import open_complaint

REFUSED = {
    "en": "is not one of the available choices",
    "ru": "нет среди допустимых значений",
}


def get(client, url, params, language="en"):
    response = client.get(url, params, headers={"Accept-Language": language})
    assert response.status_code == 200
    return response


@pytest.mark.parametrize("language", ["en", "ru"])
def test_a_store_that_is_not_the_managers_is_refused_with_an_error(
    client_as, manager, make_member, language
):
    make_member("MSK-01", "100.00")

    response = get(
        client_as("manager"), reverse("purchases:purchase-list"), {"store": "SPB-01"}, language
    )

    assert list(response.context["page"]) == []
    assert REFUSED[language] in response.text


def test_the_purchase_list_shows_one_store_when_asked(client_as, support, make_member):
    make_member("MSK-01", "100.00")
    make_member("SPB-01", "200.00", "300.00")

    response = get(client_as("support"), reverse("purchases:purchase-list"), {"store": "SPB-01"})

    assert sorted(str(p.amount) for p in response.context["page"]) == ["200.00", "300.00"]
    assert '<option value="SPB-01" selected>' in response.text


def test_the_audit_log_filters_by_who(client_as, admin_user_, support, make_member):
    member = make_member("MSK-01")
    adjust_points(member_id=member.pk, points=10, reason="one", staff=support)
    adjust_points(member_id=member.pk, points=20, reason="two", staff=admin_user_)

    response = get(client_as("admin"), reverse("loyalty:audit-list"), {"actor": "support"})

    assert [entry.actor.username for entry in response.context["page"]] == ["support"]


@pytest.mark.parametrize("language", ["en", "ru"])
def test_a_ledger_kind_that_does_not_exist_is_an_error_over_the_whole_history(
    client_as, support, make_member, language
):
    member = make_member("MSK-01", "1000.00")
    adjust_points(member_id=member.pk, points=5, reason="gift", staff=support)
    url = reverse("members:member-detail", args=[member.card_number])

    response = get(client_as("support"), url, {"kind": "bogus"}, language)
    only_adjustments = get(client_as("support"), url, {"kind": "adjust"})

    assert len(response.context["ledger_page"]) == 2  # as before: the whole history
    assert REFUSED[language] in response.text
    assert [entry.points for entry in only_adjustments.context["ledger_page"]] == [5]


def test_the_member_list_narrows_by_status(client_as, support, make_member):
    kept = make_member("MSK-01")
    blocked = make_member("MSK-01")
    set_member_blocked(member_id=blocked.pk, blocked=True, reason="fraud", staff=support)
    url = reverse("members:member-list")

    only_blocked = get(client_as("support"), url, {"status": "blocked"})
    searched = get(client_as("support"), url, {"q": "7913", "status": "active"})

    assert [m.pk for m in only_blocked.context["results"]] == [blocked.pk]
    assert [m.pk for m in searched.context["results"]] == [kept.pk]


@pytest.mark.parametrize("language", ["en", "ru"])
def test_a_member_status_that_does_not_exist_is_an_error(client_as, support, language):
    response = get(client_as("support"), reverse("members:member-list"), {"status": "x"}, language)

    assert response.context["results"] == []
    assert REFUSED[language] in response.text


@pytest.fixture
def cases(stores, support, make_member):
    install_default_surveys(Survey, ComplaintCategory)
    member = make_member("MSK-01")
    made = {}
    for subject, category in [("rude", "service"), ("points", "points")]:
        made[subject] = open_complaint(
            member=member,
            category=ComplaintCategory.objects.get(code=category),
            subject=subject,
            source="phone",
            store=stores["MSK-01"],
            staff=support,
        )
    return made


def test_the_queue_filters_by_category_and_opens_on_open_cases(client_as, support, cases):
    url = reverse("complaints:complaint-list")

    by_category = get(client_as("support"), url, {"category": "points"})
    default = get(client_as("support"), url, {})
    mine = get(client_as("support"), url, {"assignee": "me"})

    assert [case.subject for case in by_category.context["page"]] == ["points"]
    assert sorted(case.subject for case in default.context["page"]) == ["points", "rude"]
    assert '<option value="open" selected>' in default.text
    assert list(mine.context["page"]) == []


@pytest.mark.parametrize(
    ("params", "language"),
    [({"status": "lost"}, "en"), ({"category": "nope"}, "ru"), ({"assignee": "you"}, "ru")],
)
def test_a_queue_filter_it_does_not_know_is_an_error(client_as, support, cases, params, language):
    response = get(client_as("support"), reverse("complaints:complaint-list"), params, language)

    assert list(response.context["page"]) == []
    assert REFUSED[language] in response.text


@pytest.mark.parametrize("language", ["en", "ru"])
def test_an_nps_group_that_does_not_exist_is_an_error(client_as, marketer, stores, language):
    install_default_surveys(Survey, ComplaintCategory)

    response = get(
        client_as("marketer"), reverse("surveys:nps-dashboard"), {"group": "fans"}, language
    )

    assert REFUSED[language] in response.text
