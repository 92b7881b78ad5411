"""Ad-hoc survey sends to a segment, with a live count; the churn survey to lapsed members."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from loyalty.celery import app as celery_app
from loyalty.engine.purchases import record_purchase
from members.services import enrol_member
from surveys.models import SurveyInvitation, SurveySend
from surveys.services import run_survey_send
from surveys.tasks import send_waiting_survey_sends


@pytest.fixture
def crowd(surveys, stores):
    """Four members: two lapsed (bought 100 days ago), one recent, one without consent."""
    now = timezone.now()
    made = {}
    for name, consent, days_ago, store in [
        ("lapsed_msk", True, 100, "MSK-01"),
        ("lapsed_spb", True, 100, "SPB-01"),
        ("recent", True, 5, "MSK-01"),
        ("quiet", False, 100, "MSK-01"),
    ]:
        member = enrol_member(
            phone=f"+7912555{len(made):04d}",
            marketing_consent=consent,
            store=stores[store],
            first_name=name,
        )
        record_purchase(
            store=stores[store],
            external_id=f"C-{name}",
            card_number=member.card_number,
            amount="100.00",
            occurred_at=now - timedelta(days=days_ago),
            now=now,
        )
        made[name] = member
    return made


@pytest.fixture
def eager_celery():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def test_live_count_follows_the_segment(client_as, marketer, crowd, surveys):
    client = client_as("marketer")
    client.cookies["language"] = "en"
    url = reverse("surveys:survey-send")
    everyone = client.get(url, {"survey": surveys["churn"].pk}, HTTP_HX_REQUEST="true")
    assert "3 members" in everyone.content.decode()  # consent only
    lapsed = client.get(
        url, {"survey": surveys["churn"].pk, "lapsed_days": 90}, HTTP_HX_REQUEST="true"
    )
    assert "2 members" in lapsed.content.decode()
    in_msk = client.get(
        url,
        {"survey": surveys["churn"].pk, "lapsed_days": 90, "store": "MSK-01"},
        HTTP_HX_REQUEST="true",
    )
    assert "1 member " in in_msk.content.decode()


def test_churn_survey_goes_to_lapsed_members_once(
    client_as, marketer, crowd, surveys, eager_celery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_as("marketer").post(
            reverse("surveys:survey-send"), {"survey": surveys["churn"].pk, "lapsed_days": 90}
        )
    send = SurveySend.objects.get()
    assert response["Location"] == reverse("surveys:survey-send-detail", args=[send.pk])
    send.refresh_from_db()
    assert (send.status, send.total, send.done) == ("done", 2, 2)
    invited = {i.member.first_name for i in SurveyInvitation.objects.select_related("member")}
    assert invited == {"lapsed_msk", "lapsed_spb"}
    run_survey_send(send)  # a re-run (e.g. a redelivered task) invites nobody twice
    assert SurveyInvitation.objects.count() == 2
    from messaging.models import Outbox

    texts = [row.context["text"] for row in Outbox.objects.filter(purpose="survey")]
    assert len(texts) == 2
    assert all("/s/" in text for text in texts)


def test_a_survey_send_saved_while_the_broker_is_down_goes_out_once_it_is_back(
    transactional_db, client_as, marketer, crowd, surveys, broker_down, eager_celery
):
    client = client_as("marketer")
    client.cookies["language"] = "en"
    celery_app.conf.task_always_eager = False  # the page meets the dead broker

    response = client.post(
        reverse("surveys:survey-send"), {"survey": surveys["churn"].pk, "lapsed_days": 90}
    )

    send = SurveySend.objects.get()
    assert response["Location"] == reverse("surveys:survey-send-detail", args=[send.pk])
    page = client.get(response["Location"]).content.decode()
    assert "The task queue is unreachable just now: the send is saved" in page
    assert (send.status, send.enqueued_at, SurveyInvitation.objects.count()) == ("pending", None, 0)
    come_back = broker_down
    come_back()
    celery_app.conf.task_always_eager = True  # the worker, in this process
    SurveySend.objects.update(created_at=timezone.now() - timedelta(minutes=2))
    assert send_waiting_survey_sends() == 1
    send.refresh_from_db()
    assert (send.status, send.total, send.done) == ("done", 2, 2)
    assert send_waiting_survey_sends() == 0
