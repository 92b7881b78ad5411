"""Survey answers and complaints for ``generate_data`` (called by loyalty.project.datagen's hook).

Set-based SQL over the purchases and members just generated, the same on PostgreSQL and SQLite:
about 2% of member purchases get an NPS invitation three days later, about 35% of those are
answered within two days (45% promoters, 30% passives, 25% detractors, with a canned comment now
and then), every detractor opens a complaint (resolved, unless it is recent), and about 0.2% of
members called support with a complaint of their own. Choices come from integer hashes of row ids
and the seed, so a seed always gives the same rows. Invitations carry a token hash no token can
match (``generated:…``): generated links cannot be used.
"""

from datetime import timedelta

from django.db import connections, transaction

from loyalty.engine.db import dt, plus_hours
from surveys.defaults import install_default_surveys
from surveys.models import ComplaintCategory, Survey

INVITED_PER_MILLE = 20  # of member purchases
ANSWERED_PERCENT = 35
PHONE_COMPLAINTS_PER_10K = 50  # of members

COMMENTS = {
    "promoter": ["Отличный сервис, всегда вежливые продавцы", "Удобно копить баллы", ""],
    "passive": ["В целом нормально", "Хотелось бы больше акций", ""],
    "detractor": ["Долго ждал на кассе", "Не начислили баллы", "Грубый персонал", ""],
}


MULTIPLIERS = [(2654435761, 40503), (1103515245, 69069), (97931, 22695477), (48271, 16807)]


def _hash(expression, seed, salt):
    """An integer in [0, 1000) from a row id: the same on both databases."""
    # Modulo a prime, then another multiplier: hashes with different salts are independent.
    a, b = MULTIPLIERS[salt % len(MULTIPLIERS)]
    return f"((((({expression}) * {a} + {int(seed)}) %% 1000003) * {b} + {salt}) %% 1000)"


def _comment(group, h):
    options = COMMENTS[group]
    cases = " ".join(f"WHEN {i} THEN '{text}'" for i, text in enumerate(options))
    return f"CASE ({h}) %% {len(options)} {cases} END"


def generate(*, using, member_ids, purchase_ids, seed, now, progress):
    """Invitations, answers and complaints for members in ``member_ids`` and purchases in
    ``purchase_ids`` (half-open id ranges). Returns the counts made."""
    connection = connections[using]
    install_default_surveys(Survey, ComplaintCategory)
    survey = Survey.objects.using(using).filter(kind=Survey.Kind.NPS).order_by("id").first()
    categories = list(
        ComplaintCategory.objects.using(using).order_by("id").values_list("id", "sla_hours")
    )
    if survey is None or not categories:
        progress("surveys and complaints: skipped (no NPS survey or complaint category)")
        return None
    category, sla_hours = categories[0]
    plo, phi = purchase_ids
    mlo, mhi = member_ids
    h_invite = _hash("p.id", seed, 1)
    h_score = _hash("i.id", seed, 3)
    h_phone = _hash("m.id", seed, 4)
    asked = plus_hours("p.occurred_at", 72, using=using)
    counts = {}
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO surveys_surveyinvitation
                (survey_id, member_id, token_hash, purchase_id, store_id, channel, language,
                 created_at, expires_at, answered_at)
            SELECT %s, p.member_id, 'generated:' || %s || ':' || p.id, p.id, p.store_id,
                   p.channel, m.language, {asked}, {plus_hours(asked, 14 * 24, using=using)}, NULL
            FROM loyalty_purchase p JOIN members_member m ON m.id = p.member_id
            WHERE p.id >= %s AND p.id < %s AND p.member_id IS NOT NULL
              AND {h_invite} < %s AND p.occurred_at < %s
            """,  # noqa: S608 (expressions are ours, values are parameters)
            [survey.pk, seed, plo, phi, INVITED_PER_MILLE, dt(now - timedelta(days=5))],
        )
        counts["invitations"] = cursor.rowcount
        h_answer = _hash("id", seed, 2)
        answered = plus_hours("created_at", f"{h_answer} %% 48", using=using)
        cursor.execute(
            f"""
            UPDATE surveys_surveyinvitation SET answered_at = {answered}
            WHERE token_hash LIKE %s AND {h_answer} < %s
            """,  # noqa: S608
            [f"generated:{seed}:%", ANSWERED_PERCENT * 10],
        )
        score = (
            f"CASE WHEN {h_score} < 450 THEN 9 + {h_score} %% 2 "
            f"WHEN {h_score} < 750 THEN 7 + {h_score} %% 2 ELSE {h_score} %% 7 END"
        )
        cursor.execute(
            f"""
            INSERT INTO surveys_surveyresponse
                (survey_id, invitation_id, member_id, score, "group", reason, comment, store_id,
                 tier_id, channel, source, answered_at)
            SELECT survey_id, id, member_id, score,
                   CASE WHEN score >= 9 THEN 'promoter' WHEN score >= 7 THEN 'passive'
                        ELSE 'detractor' END,
                   '',
                   CASE WHEN score >= 9 THEN {_comment("promoter", "id")}
                        WHEN score >= 7 THEN {_comment("passive", "id")}
                        ELSE {_comment("detractor", "id")} END,
                   store_id, tier_id, channel, 'link', answered_at
            FROM (
                SELECT i.survey_id, i.id, i.member_id, {score} AS score, i.store_id,
                       p.tier_id, i.channel, i.answered_at
                FROM surveys_surveyinvitation i JOIN loyalty_purchase p ON p.id = i.purchase_id
                WHERE i.token_hash LIKE %s AND i.answered_at IS NOT NULL
            ) a
            """,  # noqa: S608
            [f"generated:{seed}:%"],
        )
        counts["answers"] = cursor.rowcount
        due = plus_hours("r.answered_at", sla_hours, using=using)
        resolved = plus_hours("r.answered_at", sla_hours // 2, using=using)
        recent = now - timedelta(days=7)
        cursor.execute(
            f"""
            INSERT INTO surveys_complaint
                (member_id, category_id, store_id, source, status, subject, description, due_at,
                 resolution, compensation_points, survey_response_id, created_at, resolved_at)
            SELECT r.member_id, %s, r.store_id, 'survey',
                   CASE WHEN r.answered_at < %s THEN 'resolved' ELSE 'new' END,
                   'NPS ' || r.score, r.comment, {due},
                   CASE WHEN r.answered_at < %s THEN 'Извинились, разобрались' ELSE '' END,
                   0, r.id, r.answered_at,
                   CASE WHEN r.answered_at < %s THEN {resolved} END
            FROM surveys_surveyresponse r JOIN surveys_surveyinvitation i
                ON i.id = r.invitation_id
            WHERE i.token_hash LIKE %s AND r."group" = 'detractor'
            """,  # noqa: S608
            [category, dt(recent), dt(recent), dt(recent), f"generated:{seed}:%"],
        )
        counts["survey_complaints"] = cursor.rowcount
        opened = plus_hours("m.enrolled_at", f"{h_phone} * 5", using=using)
        cursor.execute(
            f"""
            INSERT INTO surveys_complaint
                (member_id, category_id, store_id, source, status, subject, description, due_at,
                 resolution, compensation_points, created_at, resolved_at)
            SELECT m.id, %s, m.enrolled_store_id, 'phone', 'closed', 'Звонок в поддержку', '',
                   {plus_hours(opened, sla_hours, using=using)}, 'Ответили по телефону', 0,
                   {opened}, {plus_hours(opened, 2, using=using)}
            FROM members_member m
            WHERE m.id >= %s AND m.id < %s
              AND ((m.id * 40503 + %s) %% 10000) < %s
              AND {opened} < %s
            """,  # noqa: S608
            [category, mlo, mhi, int(seed), PHONE_COMPLAINTS_PER_10K, dt(now)],
        )
        counts["phone_complaints"] = cursor.rowcount
    progress(
        "surveys and complaints: {invitations:,} invitations, {answers:,} answers, "
        "{survey_complaints:,} complaints from detractors, {phone_complaints:,} by phone".format(
            **counts
        )
    )
    return counts
