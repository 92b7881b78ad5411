"""Campaign sends: schedule, start, split in chunks, run a chunk (SPEC §2, §6). The Celery
messages (one a chunk) and the send_campaigns job are in campaigns/tasks.py: services never
import tasks.

A send is split into chunks of about ``CHUNK_MEMBERS`` segment members by member-id range,
one Celery message each. A chunk is one transaction: recipients (test or control, decided by a
hash of campaign and member, so a re-run puts everyone in the same group), then for the test
group's new rows the bonus points (set-based, through the ledger), personal coupons and outbox
messages. Unique constraints with ON CONFLICT DO NOTHING make a chunk run twice add nothing,
and a chunk marks itself done in the same transaction, so a retried message does nothing.
Progress is ``Campaign.done`` / ``Campaign.total`` in the database.
"""

import hashlib
import hmac
import json
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from campaigns.models import (
    Campaign,
    CampaignChunk,
    CampaignRecipient,
    CampaignVariant,
    Segment,
)
from campaigns.queries import clear_multipliers
from loyalty.engine import outbox, webhook_events
from loyalty.engine.db import by_dialect, new_batch
from loyalty.engine.errors import LoyaltyError
from loyalty.engine.ledger import credit_batch, expires_after
from loyalty.engine.locking import retry_on_conflict
from loyalty.engine.memberships import start_trials
from loyalty.models import Coupon, audit
from members.models import Member
from members.segments import segment_members
from messaging.models import Purpose
from webhooks.models import Event

# Members per Celery message: one chunk inserts about this many recipients, points, coupons
# and messages in one transaction of a few statements (tens of milliseconds), large enough
# that the broker's per-message cost is small beside the work, small enough to retry cheaply.
CHUNK_MEMBERS = 1000
# A chunk sent this long ago and still not done is sent again (its message was lost, or its
# worker died on the filesystem broker, which does not re-deliver).
STALE_CHUNK = timedelta(minutes=10)


def split_bucket(campaign_id, member_id):
    """A member's place in a campaign's split: a hash of the pair, so it never changes, spread
    evenly over 10,000 buckets (0.01% of the segment each)."""
    digest = hashlib.sha256(f"campaign:{campaign_id}:member:{member_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 10_000


def in_control_group(campaign_id, member_id, control_percent):
    """Whether a member is in a campaign's control group: the first ``control_percent`` of
    the buckets."""
    return split_bucket(campaign_id, member_id) < control_percent * 100


def variant_bounds(offers, control_percent):
    """[(variant number, first bucket after it)]: after the control group's buckets, each
    variant takes its share of the 10,000 in number order (the last one the rest)."""
    bounds, edge = [], control_percent * 100
    for offer in offers:
        edge += offer.share * 100
        bounds.append((offer.number, edge))
    return bounds


def variant_of(bucket, bounds):
    """The variant of a test-group member's bucket (``variant_bounds``)."""
    return next((number for number, edge in bounds if bucket < edge), bounds[-1][0])


def coupon_code(campaign_id, member_id):
    """A member's personal coupon code: the same on every re-run (so a retried chunk cannot
    make a second coupon), unguessable without the secret key."""
    mac = hmac.new(
        settings.SECRET_KEY.encode(), f"coupon:{campaign_id}:{member_id}".encode(), "sha256"
    )
    return f"C{campaign_id}-{mac.hexdigest()[:10].upper()}"  # the results read this prefix


def _not_editable():
    return LoyaltyError(
        "campaign_not_editable", _("This campaign has already been sent or cancelled.")
    )


def _check_sendable(campaign, now=None):
    """A multiplier campaign whose window has ended would reach nobody: refuse to send it."""
    now = now or timezone.now()
    if campaign.kind == Campaign.Kind.MULTIPLIER and campaign.ends_at and campaign.ends_at <= now:
        raise LoyaltyError(
            "campaign_window_over",
            _("The multiplier's window has already ended: change its dates first."),
        )


def _plain(value):
    if value is None or isinstance(value, bool | int | str):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "all"):  # a many-to-many's queryset: the ids
        return sorted(item.pk for item in value)
    return str(value)


@transaction.atomic(durable=True)
def save_segment(*, segment_id=None, name, definition, staff):
    """Create a segment or change its name and criteria, audited with before and after.

    A campaign already sending keeps the criteria it started with (``Campaign.definition``).
    """
    if segment_id is None:
        segment = Segment(created_by=staff)
        before = None
    else:
        segment = Segment.objects.select_for_update().get(pk=segment_id)
        before = {"name": segment.name, "definition": segment.definition}
    segment.name = name
    segment.definition = definition
    segment.save()
    audit(
        actor=staff,
        action="segment.edit" if before else "segment.create",
        obj=segment,
        before=before,
        after={"name": name, "definition": definition},
    )
    return segment


@transaction.atomic(durable=True)
def save_campaign(*, form, staff):
    """Save a campaign from its (valid) form: only a draft or scheduled campaign can change.

    The campaign row is locked first, so a send that starts at the same moment either sees the
    change or makes it fail with ``campaign_not_editable``. Audited with the changed fields.
    """
    campaign = form.instance
    creating = campaign.pk is None
    if not creating:
        current = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if not current.is_editable:
            raise _not_editable()
        campaign.status = current.status
    changed = [name for name in form.changed_data if name in form.cleaned_data]
    before = None if creating else {name: _plain(form.initial.get(name)) for name in changed}
    if creating:
        campaign.created_by = staff
    saved = form.save()
    after = {name: _plain(form.cleaned_data[name]) for name in changed}
    variants = form.variant_rows()
    if variants is not None:
        old = [] if creating else _variant_values(saved.variants.all())
        new = _variant_values(CampaignVariant(**row) for row in variants)
        if new != old:
            saved.variants.all().delete()
            CampaignVariant.objects.bulk_create(
                [CampaignVariant(campaign=saved, **row) for row in variants]
            )
            if before is not None:
                before["variants"] = old
            after["variants"] = new
    transaction.on_commit(clear_multipliers)
    if creating or after:
        audit(
            actor=staff,
            action="campaign.create" if creating else "campaign.edit",
            obj=saved,
            before=before,
            after=after,
        )
    return saved


def _variant_values(variants):
    """Variants as the audit log keeps them: plain values, in number order."""
    fields = ("number", "share", "points", "factor", "coupon_value", "message_ru", "message_en")
    rows = sorted(variants, key=lambda variant: variant.number)
    return [{name: _plain(getattr(variant, name)) for name in fields} for variant in rows]


@transaction.atomic(durable=True)
def schedule_campaign(*, campaign_id, when, staff):
    """A draft (or a scheduled campaign, moved) is sent at ``when`` by the send_campaigns job."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
    if not campaign.is_editable:
        raise _not_editable()
    _check_sendable(campaign)
    before = {
        "status": campaign.status,
        "scheduled_at": _plain(campaign.scheduled_at),
    }
    campaign.status = Campaign.Status.SCHEDULED
    campaign.scheduled_at = when
    campaign.save(update_fields=["status", "scheduled_at"])
    audit(
        actor=staff,
        action="campaign.schedule",
        obj=campaign,
        before=before,
        after={"status": campaign.status, "scheduled_at": when.isoformat()},
    )
    return campaign


@transaction.atomic(durable=True)
def cancel_campaign(*, campaign_id, staff, now=None):
    """Stop a campaign: before it is sent, or while sending (chunks not yet done do nothing);
    a sent earn multiplier stops multiplying. What was already given stays given."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
    now = now or timezone.now()
    if not campaign.can_cancel(now):
        raise _not_editable()
    before = {"status": campaign.status}
    campaign.status = Campaign.Status.CANCELLED
    campaign.finished_at = now
    campaign.save(update_fields=["status", "finished_at"])
    audit(
        actor=staff,
        action="campaign.cancel",
        obj=campaign,
        before=before,
        after={"status": campaign.status, "done": campaign.done, "total": campaign.total},
    )
    # A cancelled multiplier stops at once in this process (others: within seconds).
    transaction.on_commit(clear_multipliers)
    return campaign


CHUNK_BOUNDS_SQL = """
SELECT id, rn, total, last FROM (
    SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS rn, COUNT(*) OVER () AS total,
           MAX(id) OVER () AS last
    FROM ({members}) AS segment
) AS numbered
WHERE (rn - 1) %% %s = 0
ORDER BY id
"""


def chunk_bounds(members, chunk_members):
    """[(low, high, size)] covering the segment's members in id order, ``chunk_members`` each,
    from one statement over the segment's ids.

    The last chunk ends after the segment's highest id, so that members enrolled during the
    send are not swept into it: a send reaches the members the segment held when it started
    (less any who left it meanwhile, such as a card blocked)."""
    sql, params = members.values("id").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(CHUNK_BOUNDS_SQL.format(members=sql), [*params, chunk_members])
        rows = cursor.fetchall()
    bounds = []
    for index, (low, rn, total, last) in enumerate(rows):
        high = rows[index + 1][0] if index + 1 < len(rows) else last + 1
        bounds.append((low, high, min(chunk_members, total - rn + 1)))
    return bounds


@transaction.atomic(durable=True)
def start_send(*, campaign_id, now, chunk_members=CHUNK_MEMBERS):
    """Claim a due scheduled campaign (scheduled → sending) and split its segment into chunks.

    Returns the chunk ids to send, or [] if the campaign was not due (or another run claimed
    it first: the claim is a conditional update whose count says who won).
    """
    claimed = Campaign.objects.filter(
        pk=campaign_id, status=Campaign.Status.SCHEDULED, scheduled_at__lte=now
    ).update(status=Campaign.Status.SENDING, sent_at=now)
    if not claimed:
        return []
    campaign = Campaign.objects.select_related("segment").get(pk=campaign_id)
    if campaign.lapsed_days:
        return _start_win_back(campaign, now)
    # A win-back's run was given its day's criteria when it was made (create_run).
    definition = campaign.definition if campaign.parent_id else campaign.segment.definition
    campaign.sent_at = now
    results_from, results_until = campaign.results_window()
    members = segment_members(definition, now=now)
    bounds = chunk_bounds(members, chunk_members)
    CampaignChunk.objects.bulk_create(
        [
            CampaignChunk(campaign=campaign, low=low, high=high, size=size)
            for low, high, size in bounds
        ]
    )
    total = sum(size for _low, _high, size in bounds)
    window = {"results_from": results_from, "results_until": results_until}
    if not bounds:
        Campaign.objects.filter(pk=campaign_id).update(
            status=Campaign.Status.DONE,
            finished_at=timezone.now(),
            definition=definition,
            **window,
        )
    else:
        Campaign.objects.filter(pk=campaign_id).update(total=total, definition=definition, **window)
    audit(
        actor=None,
        action="campaign.send",
        obj=campaign,
        before={"status": Campaign.Status.SCHEDULED},
        after={"status": Campaign.Status.SENDING, "members": total, "chunks": len(bounds)},
    )
    if campaign.kind == Campaign.Kind.MULTIPLIER:
        transaction.on_commit(clear_multipliers)
    return list(campaign.chunks.order_by("low").values_list("id", flat=True))


def _start_win_back(campaign, now):
    """A win-back's send starts its daily runs (the win_back job makes them): no chunks."""
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.RUNNING)
    audit(
        actor=None,
        action="campaign.send",
        obj=campaign,
        before={"status": Campaign.Status.SCHEDULED},
        after={"status": Campaign.Status.RUNNING, "lapsed_days": campaign.lapsed_days},
    )
    return []


# What a win-back's daily run copies of it (its offer, texts and measurement).
RUN_FIELDS = [
    "kind", "control_percent", "points", "points_expiry_days", "factor", "coupon_kind",
    "coupon_value", "coupon_sku", "coupon_min_amount", "coupon_valid_days", "subject_ru",
    "message_ru", "subject_en", "message_en", "results_days", "survey_at_end",
]  # fmt: skip


def running_win_backs(as_of):
    """Ids of the win-backs running at ``as_of``."""
    running = Campaign.objects.filter(
        status=Campaign.Status.RUNNING, lapsed_days__isnull=False, sent_at__lte=as_of
    )
    return list(running.order_by("id").values_list("id", flat=True))


@retry_on_conflict
@transaction.atomic(durable=True)
def create_run(*, win_back_id, now):
    """The day's run of a running win-back: a campaign of its own with the win-back's offer and
    variants, for the segment's members whose last purchase was exactly ``lapsed_days`` days
    before the day (in the project's time zone), scheduled at ``now``. Once a day: returns the
    run's id, the existing one's when the day already has a run, or None when the win-back no
    longer runs."""
    win_back = (
        Campaign.objects.select_for_update(of=("self",))
        .select_related("segment")
        .filter(pk=win_back_id, status=Campaign.Status.RUNNING)
        .first()
    )
    if win_back is None:
        return None
    day = timezone.localdate(now)
    existing = win_back.runs.filter(run_on=day).values_list("id", flat=True).first()
    if existing is not None:
        return existing
    lapsed_on = day - timedelta(days=win_back.lapsed_days)
    run = Campaign.objects.create(
        name=f"{win_back.name} · {day.isoformat()}"[:200],
        segment=win_back.segment,
        parent=win_back,
        run_on=day,
        status=Campaign.Status.SCHEDULED,
        scheduled_at=now,
        definition={**win_back.segment.definition, "last_purchase_on": lapsed_on.isoformat()},
        created_by=win_back.created_by,
        **{name: getattr(win_back, name) for name in RUN_FIELDS},
    )
    CampaignVariant.objects.bulk_create(
        [
            CampaignVariant(
                campaign=run,
                **{name: getattr(variant, name) for name in VARIANT_COPY},
            )
            for variant in win_back.variants.all()
        ]
    )
    return run.pk


VARIANT_COPY = [
    "number", "share", "points", "factor", "coupon_value", "subject_ru", "message_ru",
    "subject_en", "message_en",
]  # fmt: skip


@transaction.atomic(durable=True)
def send_now(*, campaign_id, staff, now=None):
    """Schedule for now (the page's "Send now"). Returns the campaign. The caller then asks a
    worker to start it at once (``campaigns.tasks.start_soon``): this is durable, so it has
    committed by then."""
    now = now or timezone.now()
    campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
    if not campaign.is_editable:
        raise _not_editable()
    _check_sendable(campaign, now)
    Campaign.objects.filter(pk=campaign_id).update(
        status=Campaign.Status.SCHEDULED, scheduled_at=now
    )
    audit(
        actor=staff,
        action="campaign.send_now",
        obj=campaign,
        before={"status": campaign.status},
        after={"status": Campaign.Status.SCHEDULED, "scheduled_at": now.isoformat()},
    )
    return campaign


def _message(campaign, offer, language, code):
    """The outbox context of a member's message: the variant's text in the member's language
    (the other one when only that was written), and the personal coupon's code, if any."""
    language = "en" if language == "en" else "ru"
    other = "ru" if language == "en" else "en"
    own, fallback = offer.text(language), offer.text(other)
    subject, text = own[0] or fallback[0], own[1] or fallback[1]
    if code:
        with translation.override(language):
            line = gettext("Your coupon code: %(code)s") % {"code": code}
        text = f"{text}\n\n{line}" if text else line
        subject = subject or campaign.name
    return {"subject": subject, "text": text, "campaign": campaign.pk}


@retry_on_conflict
@transaction.atomic(durable=True)
def run_chunk(chunk_id):
    """Do one chunk of a send; safe to run twice and concurrently (the chunk row is locked and
    marked done in the same transaction). Returns the number of new recipients."""
    chunk = (
        CampaignChunk.objects.select_for_update(of=("self",))
        .select_related("campaign")
        .filter(pk=chunk_id)
        .first()
    )
    if chunk is None or chunk.is_done or chunk.campaign.status != Campaign.Status.SENDING:
        return 0
    campaign = chunk.campaign
    now = campaign.sent_at
    batch = new_batch()
    members = segment_members(campaign.definition, now=now).filter(
        id__gte=chunk.low, id__lt=chunk.high
    )
    offers = campaign.offers()
    insert_recipients = by_dialect(postgres=_insert_recipients_sql, sqlite=_insert_recipients)
    insert_recipients(campaign, offers, members, batch, now)
    # Only rows this run inserted carry its batch: a re-run finds none of the earlier ones.
    new = {
        member_id: (group, variant)
        for member_id, group, variant in CampaignRecipient.objects.filter(batch=batch).values_list(
            "member_id", "group", "variant"
        )
    }
    test = {
        member_id: variant for member_id, (group, variant) in sorted(new.items()) if group == "test"
    }
    if test:
        _offer(campaign, offers, test, batch, now)
    CampaignChunk.objects.filter(pk=chunk.pk).update(
        is_done=True, recipients=len(new), done_at=timezone.now()
    )
    # This update locks the campaign row until commit, so of two last chunks finishing at once
    # the second sees the first done and closes the send.
    Campaign.objects.filter(pk=campaign.pk).update(done=F("done") + chunk.size)
    if not CampaignChunk.objects.filter(campaign_id=campaign.pk, is_done=False).exists():
        Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.SENDING).update(
            status=Campaign.Status.DONE, finished_at=timezone.now()
        )
    return len(new)


# split_bucket in SQL: the first 4 bytes of the same SHA-256, as a big-endian integer.
BUCKET_SQL = (
    "(('x' || encode(substring(sha256(convert_to("
    "'campaign:' || %s || ':member:' || m.id, 'UTF8')) from 1 for 4), 'hex'))::bit(32)::bigint"
    " %% 10000)"
)


def _insert_recipients(campaign, offers, members, batch, now):
    """The chunk's recipients, their group and variant decided in Python (``split_bucket``)."""
    control = campaign.control_percent * 100
    bounds = variant_bounds(offers, campaign.control_percent)
    group = CampaignRecipient.Group
    rows = []
    for member_id in members.order_by("id").values_list("id", flat=True):
        bucket = split_bucket(campaign.pk, member_id)
        in_control = bucket < control
        rows.append(
            CampaignRecipient(
                campaign_id=campaign.pk,
                member_id=member_id,
                group=group.CONTROL if in_control else group.TEST,
                variant=0 if in_control else variant_of(bucket, bounds),
                batch=batch,
                created_at=now,
            )
        )
    CampaignRecipient.objects.bulk_create(rows, ignore_conflicts=True)


def _insert_recipients_sql(campaign, offers, members, batch, now):
    """PostgreSQL: the chunk's recipients in one INSERT … SELECT (no rows through Python), the
    group and variant decided by the same hash as ``split_bucket``."""
    sql, params = members.values("id").query.sql_with_params()
    bounds = variant_bounds(offers, campaign.control_percent)
    variant_sql = " ".join("WHEN b.bucket < %s THEN %s" for _bound in bounds[:-1])
    variant_params = [value for number, edge in bounds[:-1] for value in (edge, number)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO campaigns_campaignrecipient
                (campaign_id, member_id, grp, variant, batch, created_at)
            SELECT %s, b.id,
                   CASE WHEN b.bucket < %s THEN 'control' ELSE 'test' END,
                   CASE WHEN b.bucket < %s THEN 0 {variant_sql} ELSE %s END,
                   %s, %s
            FROM (SELECT m.id, {BUCKET_SQL} AS bucket FROM ({sql}) AS m) AS b
            ORDER BY b.id
            ON CONFLICT DO NOTHING
            """,  # noqa: S608 (the segment's SQL is the ORM's; values are parameters)
            [
                campaign.pk,
                campaign.control_percent * 100,
                campaign.control_percent * 100,
                *variant_params,
                bounds[-1][0],
                batch,
                now,
                campaign.pk,
                *params,
            ],
        )


def _has_text(offer):
    return any(offer.text(language)[1] for language in ("ru", "en"))


def _insert_messages_sql(campaign, offers, batch, now):
    """PostgreSQL: one outbox message per new test recipient of a variant with a text, in the
    member's language, in one INSERT … SELECT (the texts are built once, here)."""
    cases, params = [], []
    for offer in offers:
        cases.append("WHEN r.variant = %s AND m.language = 'en' THEN %s::jsonb")
        cases.append("WHEN r.variant = %s THEN %s::jsonb")
        params += [offer.number, json.dumps(_message(campaign, offer, "en", None))]
        params += [offer.number, json.dumps(_message(campaign, offer, "ru", None))]
    with connection.cursor() as cursor:
        cursor.execute(
            *outbox.insert_sql(
                Purpose.CAMPAIGN,
                f"""
                SELECT r.member_id, CASE {" ".join(cases)} END AS context,
                       %s || ':' || r.member_id AS event
                FROM campaigns_campaignrecipient r JOIN members_member m ON m.id = r.member_id
                WHERE r.batch = %s AND r.grp = 'test' AND r.variant IN ({
                    ", ".join("%s" for _offer in offers)
                })
                """,  # noqa: S608 (only placeholders are written in)
                [*params, campaign.pk, batch, *(offer.number for offer in offers)],
                now=now,
            )
        )


def _grant_points(campaign, offers, batch, now):
    """Each new test recipient's bonus points, by variant, through the ledger in one batch."""
    cases = " ".join("WHEN %s THEN %s" for _offer in offers)
    with connection.cursor() as cursor:
        credit_batch(
            cursor,
            batch=batch,
            grants_sql=(
                f"SELECT member_id, CASE variant {cases} ELSE 0 END AS points"  # noqa: S608
                " FROM campaigns_campaignrecipient WHERE batch = %s AND grp = 'test'"
            ),
            params=[*(value for offer in offers for value in (offer.number, offer.points)), batch],
            now=now,
            expires_at=expires_after(now, campaign.points_expiry_days),
            reason=f"{campaign.name} (#{campaign.pk})"[:500],
            job="send_campaigns",
        )


def _offer(campaign, offers, test, batch, now):
    """What the test group's new recipients get (``test``: member id -> variant), each by the
    offer of their variant: points, a coupon, a message."""
    by_number = {offer.number: offer for offer in offers}
    if campaign.kind == Campaign.Kind.BONUS_POINTS and any(offer.points for offer in offers):
        _grant_points(campaign, offers, batch, now)
    if campaign.kind == Campaign.Kind.FREE_TRIAL and campaign.trial_plan_id:
        with connection.cursor() as cursor:
            start_trials(
                cursor,
                members_sql="SELECT member_id FROM campaigns_campaignrecipient"
                " WHERE batch = %s AND grp = 'test'",
                params=[batch],
                plan=campaign.trial_plan,
                now=now,
            )
    codes = {}
    if campaign.kind == Campaign.Kind.COUPON:
        codes = {member_id: coupon_code(campaign.pk, member_id) for member_id in test}
        Coupon.objects.bulk_create(
            [
                Coupon(
                    code=code,
                    kind=campaign.coupon_kind,
                    value=by_number[test[member_id]].coupon_value,
                    sku=campaign.coupon_sku,
                    min_amount=campaign.coupon_min_amount,
                    member_id=member_id,
                    valid_from=now,
                    valid_until=now + timedelta(days=campaign.coupon_valid_days),
                    max_uses=1,
                )
                for member_id, code in codes.items()
            ],
            ignore_conflicts=True,
        )
        if codes and webhook_events.wants(Event.COUPON_ISSUED):
            webhook_events.execute(*webhook_events.coupons_issued_sql(codes.values(), now=now))
    worded = [offer for offer in offers if _has_text(offer)]
    if not (worded or codes):
        return
    # A coupon is always announced (its code is in no other place the member sees).
    # Consent, quiet hours and the frequency cap are applied by delivery.
    if not codes and by_dialect(postgres=True, sqlite=False):
        _insert_messages_sql(campaign, worded, batch, now)
        return
    worded_numbers = {offer.number for offer in worded}
    told = [m for m in test if m in codes or test[m] in worded_numbers]
    languages = dict(Member.objects.filter(pk__in=told).values_list("id", "language"))
    outbox.enqueue_many(
        [
            outbox.new_row(
                member_id=member_id,
                purpose=Purpose.CAMPAIGN,
                key=f"campaign:{campaign.pk}:{member_id}",
                context=_message(
                    campaign,
                    by_number[test[member_id]],
                    languages.get(member_id),
                    codes.get(member_id),
                ),
                now=now,
            )
            for member_id in told
        ]
    )


def due_campaigns(as_of):
    """Ids of the scheduled campaigns due at ``as_of``, the earliest first."""
    due = Campaign.objects.filter(status=Campaign.Status.SCHEDULED, scheduled_at__lte=as_of)
    return list(due.order_by("scheduled_at", "id").values_list("id", flat=True))


def chunks_to_resend():
    """Ids of the chunks of running sends never sent, or sent long ago and not done (an
    interrupted send is finished by sending them again; a chunk is safe to run twice)."""
    running = CampaignChunk.objects.filter(campaign__status=Campaign.Status.SENDING, is_done=False)
    return list(running.filter(enqueued_at__isnull=True).values_list("id", flat=True)) + list(
        running.filter(enqueued_at__lt=timezone.now() - STALE_CHUNK).values_list("id", flat=True)
    )
