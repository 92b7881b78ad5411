"""dispatch_nps: ask members how likely they are to recommend us, N days after a purchase.

At most once per cooldown (90 days) per member, only with marketing consent, a deterministic
sample of purchases, and one reminder. Safe to run twice (a member invited within the cooldown
is not invited again; a reminded invitation is not reminded again) and to interrupt (each batch
commits its invitations and their messages together).
"""

from datetime import timedelta

from django.db import transaction
from django.db.models import Exists, Max, OuterRef

from loyalty.models import Purchase
from members.models import Member
from surveys.messages import survey_message, survey_url
from surveys.models import Survey, SurveyInvitation
from surveys.services import create_invitation, renew_token

LOOKBACK_DAYS = 2  # an hourly job that missed up to two days of runs still catches up
BATCH = 500


def in_sample(purchase_id, rate):
    """A stable pseudo-random draw per purchase, so a re-run samples the same purchases."""
    if rate >= 1:
        return True
    return (purchase_id * 2654435761) % 10_000 < int(rate * 10_000)


def _send(member_id, raw_token, key, now, reminder=False, language="ru"):
    from messaging.services import enqueue

    enqueue(
        member_id=member_id,
        purpose="survey",
        key=key,
        context=survey_message(language, survey_url(raw_token), reminder=reminder),
        now=now,
    )


def dispatch_nps(*, as_of, run=None, batch_size=BATCH):
    """Invite members whose purchase is ``delay_days`` old; remind unanswered invitations."""
    from loyalty.engine.progress import checkpoint

    survey = Survey.objects.filter(code="nps", is_active=True).first()
    if survey is None:
        return 0
    due_until = as_of - timedelta(days=survey.delay_days)
    recently_invited = SurveyInvitation.objects.filter(
        survey=survey,
        member=OuterRef("member_id"),
        created_at__gt=as_of - timedelta(days=survey.cooldown_days),
    )
    candidates = (
        Purchase.objects.filter(
            member__isnull=False,
            is_historical=False,
            occurred_at__gt=due_until - timedelta(days=LOOKBACK_DAYS),
            occurred_at__lte=due_until,
            member__marketing_consent=True,
            member__status=Member.Status.ACTIVE,
        )
        .filter(~Exists(recently_invited))
        .values("member_id")
        .annotate(purchase_id=Max("id"))
        .order_by("member_id")
    )
    chosen = [row for row in candidates if in_sample(row["purchase_id"], survey.sampling_rate)]
    invited = 0
    for start in range(0, len(chosen), batch_size):
        batch = chosen[start : start + batch_size]
        purchases = Purchase.objects.select_related("member").in_bulk(
            [row["purchase_id"] for row in batch]
        )
        with transaction.atomic():
            for row in batch:
                purchase = purchases[row["purchase_id"]]
                invitation, raw = create_invitation(
                    survey=survey, member=purchase.member, now=as_of, purchase=purchase
                )
                _send(
                    purchase.member_id,
                    raw,
                    f"survey:{invitation.pk}",
                    as_of,
                    language=purchase.member.language,
                )
        invited += len(batch)
        checkpoint(run, len(batch), invited=len(batch))
    reminded = remind_unanswered(survey=survey, as_of=as_of, run=run, batch_size=batch_size)
    return invited + reminded


def remind_unanswered(*, survey, as_of, run=None, batch_size=BATCH):
    """One reminder for an invitation still unanswered after ``reminder_after_days``."""
    from loyalty.engine.progress import checkpoint

    reminded = 0
    while True:
        with transaction.atomic():
            batch = list(
                SurveyInvitation.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("member")
                .filter(
                    survey=survey,
                    answered_at__isnull=True,
                    reminded_at__isnull=True,
                    created_at__lte=as_of - timedelta(days=survey.reminder_after_days),
                    expires_at__gt=as_of,
                    member__marketing_consent=True,
                )
                .order_by("id")[:batch_size]
            )
            if not batch:
                break
            for invitation in batch:
                raw = renew_token(invitation)
                _send(
                    invitation.member_id,
                    raw,
                    f"survey-reminder:{invitation.pk}",
                    as_of,
                    reminder=True,
                    language=invitation.member.language,
                )
            SurveyInvitation.objects.filter(pk__in=[i.pk for i in batch]).update(reminded_at=as_of)
        reminded += len(batch)
        checkpoint(run, len(batch), reminded=len(batch))
    return reminded
