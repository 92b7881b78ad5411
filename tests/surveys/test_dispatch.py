"""dispatch_nps: N days after a purchase, once per 90 days, consent only, one reminder."""

from datetime import UTC, datetime, timedelta

import pytest

from loyalty.engine.purchases import record_purchase
from members.services import enrol_member
from surveys.jobs import dispatch_nps, in_sample
from surveys.models import SurveyInvitation

T = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def bought(surveys, member, stores):
    def buy(when=T, who=None, receipt=None):
        record_purchase(
            store=stores["MSK-01"],
            external_id=receipt or f"N-{when.isoformat()}",
            card_number=(who or member).card_number,
            amount="500.00",
            occurred_at=when,
            now=when,
        )

    buy()
    return buy


def outbox_keys():
    from messaging.models import Outbox

    return sorted(Outbox.objects.filter(purpose="survey").values_list("key", flat=True))


def test_not_before_three_days_then_once(bought, member):
    dispatch_nps(as_of=T + timedelta(days=3) - timedelta(seconds=1))
    assert SurveyInvitation.objects.count() == 0
    dispatch_nps(as_of=T + timedelta(days=3))
    invitation = SurveyInvitation.objects.get()
    assert (invitation.member, invitation.survey.code) == (member, "nps")
    assert invitation.expires_at == T + timedelta(days=17)
    assert outbox_keys() == [f"survey:{invitation.pk}"]
    dispatch_nps(as_of=T + timedelta(days=3, hours=1))  # the next hourly run
    assert SurveyInvitation.objects.count() == 1
    assert len(outbox_keys()) == 1


def test_at_most_once_per_90_days(bought, member):
    dispatch_nps(as_of=T + timedelta(days=3))
    bought(T + timedelta(days=30))
    dispatch_nps(as_of=T + timedelta(days=33))
    assert SurveyInvitation.objects.count() == 1
    bought(T + timedelta(days=91))
    dispatch_nps(as_of=T + timedelta(days=94))
    assert SurveyInvitation.objects.count() == 2


def test_members_without_consent_are_not_asked(surveys, stores):
    quiet = enrol_member(phone="+79127770099", marketing_consent=False, store=stores["MSK-01"])
    record_purchase(
        store=stores["MSK-01"],
        external_id="Q1",
        card_number=quiet.card_number,
        amount="100.00",
        occurred_at=T,
        now=T,
    )
    dispatch_nps(as_of=T + timedelta(days=3))
    assert SurveyInvitation.objects.count() == 0


def test_one_reminder_two_days_later_with_a_fresh_link(bought):
    dispatch_nps(as_of=T + timedelta(days=3))
    first_hash = SurveyInvitation.objects.get().token_hash
    dispatch_nps(as_of=T + timedelta(days=5) - timedelta(seconds=1))
    assert SurveyInvitation.objects.get().reminded_at is None
    dispatch_nps(as_of=T + timedelta(days=5))
    dispatch_nps(as_of=T + timedelta(days=6))
    invitation = SurveyInvitation.objects.get()
    assert invitation.reminded_at == T + timedelta(days=5)
    assert invitation.token_hash != first_hash
    assert outbox_keys() == sorted([f"survey:{invitation.pk}", f"survey-reminder:{invitation.pk}"])


def test_sampling_rate_is_honoured_and_stable(surveys, stores):
    nps = surveys["nps"]
    nps.sampling_rate = "0.25"
    nps.save()
    for index in range(40):
        who = enrol_member(
            phone=f"+7912888{index:04d}", marketing_consent=True, store=stores["MSK-01"]
        )
        record_purchase(
            store=stores["MSK-01"],
            external_id=f"S{index}",
            card_number=who.card_number,
            amount="100.00",
            occurred_at=T,
            now=T,
        )
    from loyalty.models import Purchase

    expected = sum(in_sample(pk, 0.25) for pk in Purchase.objects.values_list("pk", flat=True))
    dispatch_nps(as_of=T + timedelta(days=3))
    assert SurveyInvitation.objects.count() == expected
    assert 0 < expected < 40


def test_interrupted_run_finishes_without_doubling(bought, surveys, stores, monkeypatch):
    for index in range(5):
        who = enrol_member(
            phone=f"+7912999{index:04d}", marketing_consent=True, store=stores["MSK-01"]
        )
        bought(T, who=who, receipt=f"I{index}")
    import surveys.jobs as jobs

    real = jobs._send
    calls = {"n": 0}

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("worker killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(jobs, "_send", failing)
    with pytest.raises(RuntimeError):
        dispatch_nps(as_of=T + timedelta(days=3), batch_size=2)
    assert SurveyInvitation.objects.count() == 2  # the first batch committed, the second not
    monkeypatch.setattr(jobs, "_send", real)
    dispatch_nps(as_of=T + timedelta(days=3), batch_size=2)
    assert SurveyInvitation.objects.count() == 6
    assert len(outbox_keys()) == 6


def test_runjob_dispatch_nps_with_as_of(bought, member):
    from django.core.management import call_command

    from loyalty.models import JobRun

    call_command("runjob", "dispatch_nps", "--as-of", (T + timedelta(days=3)).isoformat())
    assert SurveyInvitation.objects.get().member == member
    run = JobRun.objects.get(job="dispatch_nps")
    assert run.rows == 1
    call_command("runjob", "dispatch_nps", "--as-of", (T + timedelta(days=3)).isoformat())
    assert SurveyInvitation.objects.count() == 1
