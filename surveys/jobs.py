"""dispatch_nps: ask members how likely they are to recommend us, N days after a purchase;
campaign_surveys: ask a campaign's recipients the same when its results window ends.

At most once per cooldown (90 days) per member, only with marketing consent, a deterministic
sample of purchases, and one reminder. Safe to run twice (a member invited within the cooldown
is not invited again; a reminded invitation is not reminded again) and to interrupt (each batch
commits its invitations and their messages together).
"""

import secrets
from datetime import timedelta

from django.db import transaction
from django.db.models import Exists, Max, OuterRef

from campaigns.models import Campaign, CampaignRecipient
from loyalty.engine import outbox
from loyalty.models import Purchase
from members.models import Member
from messaging.models import Purpose
from surveys.messages import survey_message, survey_url
from surveys.models import Survey, SurveyInvitation
from surveys.services import create_invitation, hash_token, renew_token

LOOKBACK_DAYS = 2  # an hourly job that missed up to two days of runs still catches up
BATCH = 500


def in_sample(purchase_id, rate):
    """A stable pseudo-random draw per purchase, so a re-run samples the same purchases."""
    if rate >= 1:
        return True
    return (purchase_id * 2654435761) % 10_000 < int(rate * 10_000)


def _send(member_id, raw_token, key, now, reminder=False, language="ru"):
    outbox.enqueue(
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


def campaigns_to_survey(as_of):
    """Sent campaigns that asked for an NPS survey at their end, whose results window has
    ended by ``as_of`` and whose survey has not gone out yet (a few rows: read in Python)."""
    waiting = Campaign.objects.filter(
        survey_at_end=True, surveyed_at__isnull=True, status=Campaign.Status.DONE
    ).order_by("id")
    return [campaign for campaign in waiting if campaign.results_window()[1] <= as_of]


def campaign_surveys(*, as_of, run=None, batch_size=BATCH):
    """Invite each recipient of a campaign whose results window has ended, test and control
    group alike, to the NPS survey, once: members with marketing consent who are still active,
    as dispatch_nps asks them. The 90-day pause between surveys is not applied: buyers, who
    are more often in the test group, would be surveyed less, and the two groups' NPS would no
    longer compare. Unanswered, they are reminded once with dispatch_nps's reminders.

    Safe to run twice and to interrupt: a member invited for the campaign is skipped (and the
    database refuses a second invitation), each batch commits its invitations and messages
    together, and the campaign is marked surveyed only when every batch is done."""
    from loyalty.engine.progress import checkpoint

    survey = Survey.objects.filter(code="nps", is_active=True).first()
    if survey is None:
        return 0
    invited = 0
    for campaign in campaigns_to_survey(as_of):
        already = SurveyInvitation.objects.filter(campaign=campaign, member=OuterRef("member_id"))
        members = list(
            CampaignRecipient.objects.filter(
                campaign=campaign,
                member__marketing_consent=True,
                member__status=Member.Status.ACTIVE,
            )
            .filter(~Exists(already))
            .order_by("member_id")
            .values_list("member_id", "member__language", "member__enrolled_store_id")
        )
        for start in range(0, len(members), batch_size):
            batch = members[start : start + batch_size]
            _invite_to_campaign_survey(survey, campaign, batch, as_of)
            invited += len(batch)
            checkpoint(run, len(batch), invited=len(batch))
        Campaign.objects.filter(pk=campaign.pk, surveyed_at__isnull=True).update(surveyed_at=as_of)
    return invited


def _invite_to_campaign_survey(survey, campaign, members, now):
    """One batch: (member id, language, home store) -> an invitation and its message."""
    invitations, messages = [], []
    for member_id, language, store_id in members:
        raw = secrets.token_urlsafe(32)
        invitations.append(
            SurveyInvitation(
                survey=survey,
                member_id=member_id,
                token_hash=hash_token(raw),
                campaign=campaign,
                store_id=store_id,
                language=language,
                created_at=now,
                expires_at=now + timedelta(days=survey.link_valid_days),
            )
        )
        messages.append(
            outbox.new_row(
                member_id=member_id,
                purpose=Purpose.SURVEY,
                key=f"campaign-survey:{campaign.pk}:{member_id}",
                context=survey_message(language, survey_url(raw)),
                now=now,
            )
        )
    with transaction.atomic():
        SurveyInvitation.objects.bulk_create(invitations)
        outbox.enqueue_many(messages)
