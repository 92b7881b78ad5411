"""NPS figures are exact on a known set of answers."""

import pytest
from django.utils import timezone

from surveys.models import SurveyResponse
from surveys.queries import nps_by, nps_figures, nps_responses, nps_summary


def test_nps_and_its_interval_on_known_counts():
    figures = nps_figures(promoters=50, passives=30, detractors=20)
    # NPS = 50% − 20% = 30; se = sqrt((0.5 + 0.2 − 0.3²) / 100) = 0.0781; ±1.96·se = ±15.3
    assert figures["nps"] == 30.0
    assert (figures["low"], figures["high"]) == (14.7, 45.3)
    assert figures["n"] == 100
    assert (figures["promoter_pct"], figures["passive_pct"], figures["detractor_pct"]) == (
        50.0,
        30.0,
        20.0,
    )


def test_all_promoters_is_100_with_no_spread():
    figures = nps_figures(promoters=7, passives=0, detractors=0)
    assert (figures["nps"], figures["low"], figures["high"]) == (100.0, 100.0, 100.0)


def test_no_answers_is_no_score():
    assert nps_figures(0, 0, 0)["nps"] is None


@pytest.fixture
def answers(surveys, member, stores):
    def add(score, store="MSK-01"):
        SurveyResponse.objects.create(
            survey=surveys["nps"],
            member=member,
            score=score,
            group="promoter" if score >= 9 else "passive" if score >= 7 else "detractor",
            store=stores[store],
            tier=member.tier,
            channel="store",
            answered_at=timezone.now(),
        )

    for score in [10, 10, 9, 8, 3]:
        add(score)
    for score in [0, 6, 9]:
        add(score, "SPB-01")
    return add


def test_summary_and_split_by_store_from_the_database(answers, django_assert_num_queries):
    responses = nps_responses()
    with django_assert_num_queries(1):
        summary = nps_summary(responses)
    assert (summary["n"], summary["promoters"], summary["detractors"], summary["nps"]) == (
        8,
        4,
        3,
        12.5,
    )
    with django_assert_num_queries(1):
        rows = nps_by(responses, "store")
    assert [(row["key"], row["nps"], row["n"]) for row in rows] == [
        ("MSK-01", 40.0, 5),
        ("SPB-01", -33.3, 3),
    ]


def test_dashboard_shows_the_figures_and_filters_comments(client_as, marketer, answers):
    SurveyResponse.objects.filter(score=3).update(comment="Грязно в зале")
    SurveyResponse.objects.filter(score=8).update(comment="Неплохо")
    page = client_as("marketer").get("/surveys/", {"group": "detractor"})
    assert page.status_code == 200
    assert page.context["summary"]["nps"] == 12.5
    comments = [response.comment for response in page.context["comments"]]
    assert comments == ["Грязно в зале"]
