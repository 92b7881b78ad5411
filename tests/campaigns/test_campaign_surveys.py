"""The NPS survey at a campaign's end: when the results window ends, test and control recipients
with consent are asked once (campaign_surveys job); the results show NPS per group."""

import csv
import io
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from campaigns.models import Campaign, CampaignRecipient, CampaignVariant
from messaging.models import Outbox
from surveys import jobs
from surveys.defaults import install_default_surveys
from surveys.jobs import campaign_surveys, dispatch_nps
from surveys.models import ComplaintCategory, Survey, SurveyInvitation
from surveys.queries import nps_by_campaign
from surveys.services import answer_survey
from tests.campaigns.conftest import at

SENT = at("2025-03-01 12:00")
END = SENT + timedelta(days=30)  # the default results window


@pytest.fixture
def nps_survey(db):
    install_default_surveys(Survey, ComplaintCategory)
    return Survey.objects.get(code="nps")


@pytest.fixture
def surveyed_campaign(nps_survey, many_members, make_campaign, send):
    """A campaign to 40 members with consent and 5 without, control 50%, that asks for NPS
    at its end."""
    many_members(40)
    many_members(5, consent=False)
    campaign = make_campaign(control_percent=50, survey_at_end=True)
    send(campaign, now=SENT)
    return campaign


def invited(campaign):
    return set(
        SurveyInvitation.objects.filter(campaign=campaign).values_list("member_id", flat=True)
    )


def recipients(campaign, **filters):
    return set(
        CampaignRecipient.objects.filter(campaign=campaign, **filters).values_list(
            "member_id", flat=True
        )
    )


def test_the_survey_waits_for_the_end_of_the_results_window(surveyed_campaign):
    assert campaign_surveys(as_of=END - timedelta(seconds=1)) == 0
    assert invited(surveyed_campaign) == set()

    assert campaign_surveys(as_of=END) == 40

    consenting = recipients(surveyed_campaign, member__marketing_consent=True)
    assert invited(surveyed_campaign) == consenting
    # Both groups are asked: the test group and the control group alike.
    assert consenting & recipients(surveyed_campaign, group="control")
    assert consenting & recipients(surveyed_campaign, group="test")
    keys = set(Outbox.objects.filter(purpose="survey").values_list("key", flat=True))
    assert keys == {f"campaign-survey:{surveyed_campaign.pk}:{pk}" for pk in consenting}
    surveyed_campaign.refresh_from_db()
    assert surveyed_campaign.surveyed_at == END


def test_runjob_twice_asks_each_member_once(surveyed_campaign):
    for _ in range(2):
        call_command("runjob", "campaign_surveys", "--as-of", END.isoformat(), stdout=StringIO())

    assert SurveyInvitation.objects.filter(campaign=surveyed_campaign).count() == 40
    assert Outbox.objects.filter(purpose="survey").count() == 40


def test_an_interrupted_run_is_finished_by_the_next(surveyed_campaign, monkeypatch):
    calls = []
    real = jobs._invite_to_campaign_survey

    def crash_on_the_second_batch(*args):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("worker died")
        real(*args)

    monkeypatch.setattr(jobs, "_invite_to_campaign_survey", crash_on_the_second_batch)
    with pytest.raises(RuntimeError):
        campaign_surveys(as_of=END, batch_size=15)
    assert len(invited(surveyed_campaign)) == 15
    surveyed_campaign.refresh_from_db()
    assert surveyed_campaign.surveyed_at is None

    monkeypatch.setattr(jobs, "_invite_to_campaign_survey", real)
    assert campaign_surveys(as_of=END, batch_size=15) == 25
    assert invited(surveyed_campaign) == recipients(
        surveyed_campaign, member__marketing_consent=True
    )


def test_campaigns_that_did_not_ask_or_were_cancelled_send_no_survey(
    nps_survey, many_members, make_campaign, send
):
    many_members(10)
    quiet = make_campaign()
    send(quiet, now=SENT)
    cancelled = make_campaign(survey_at_end=True)
    send(cancelled, now=SENT)
    Campaign.objects.filter(pk=cancelled.pk).update(status=Campaign.Status.CANCELLED)

    assert campaign_surveys(as_of=END + timedelta(days=1)) == 0
    assert not SurveyInvitation.objects.exists()


def test_an_unanswered_campaign_survey_is_reminded_once(surveyed_campaign):
    campaign_surveys(as_of=END)

    dispatch_nps(as_of=END + timedelta(days=2))

    reminded = Outbox.objects.filter(purpose="survey", key__startswith="survey-reminder:")
    assert reminded.count() == 40


def token_of(member_id):
    """The raw token in the link of a member's campaign survey message."""
    url = Outbox.objects.get(key__startswith="campaign-survey:", member_id=member_id).context[
        "survey_url"
    ]
    return url.rstrip("/").rsplit("/", 1)[1]


@pytest.fixture
def answered(nps_survey, many_members, make_campaign, send):
    """A campaign with two variants; members set by hand into control (answers 10 and 3),
    variant 1 (10, 9, 8) and variant 2 (no answers); a member of control does not answer."""
    ids = many_members(9)
    campaign = make_campaign(control_percent=30, survey_at_end=True)
    CampaignVariant.objects.create(campaign=campaign, number=2, share=30)
    send(campaign, now=SENT)
    arms = {0: ids[:3], 1: ids[3:6], 2: ids[6:]}
    for variant, members in arms.items():
        CampaignRecipient.objects.filter(campaign=campaign, member_id__in=members).update(
            group="control" if variant == 0 else "test", variant=variant
        )
    campaign_surveys(as_of=END)
    for member_id, score in zip([*ids[:2], *ids[3:6]], [10, 3, 10, 9, 8], strict=True):
        answer_survey(token=token_of(member_id), score=score, now=END + timedelta(hours=1))
    return campaign


def test_nps_by_campaign_group_with_its_interval(answered):
    figures = nps_by_campaign(answered.pk)

    # Control: a promoter and a detractor of 2 answers, NPS 0; the interval is
    # 100 x 1.96 x sqrt((0.5 + 0.5 - 0) / 2) = 138.6 wide each side, cut at -100 and 100.
    assert (figures[0]["n"], figures[0]["nps"], figures[0]["low"], figures[0]["high"]) == (
        2,
        0.0,
        -100.0,
        100.0,
    )
    # Variant 1: 2 promoters, 1 passive: NPS 66.7; 1.96 x sqrt((2/3 - 4/9) / 3) = 53.3.
    assert (figures[1]["n"], figures[1]["nps"], figures[1]["low"], figures[1]["high"]) == (
        3,
        66.7,
        13.3,
        100.0,
    )
    assert 2 not in figures


def test_the_results_page_and_csv_show_nps_per_group(client_as, answered):
    client = client_as("marketer")

    page = client.get(f"/campaigns/{answered.pk}/")
    response = client.get(f"/campaigns/{answered.pk}/results.csv")

    assert 'data-testid="campaign-nps"' in page.text
    assert "66,7" in page.text
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][-4:] == ["nps_answers", "nps", "nps_ci95_low", "nps_ci95_high"]
    by_variant = {row[1]: row[-4:] for row in rows[1:]}
    assert by_variant == {
        "1": ["3", "66.7", "13.3", "100.0"],
        "2": ["0", "", "", ""],
        "0": ["2", "0.0", "-100.0", "100.0"],
    }
