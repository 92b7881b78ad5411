"""The what-if replay: the last 12 months under today's rules and under a proposal, worked out
by hand. Points expire 30 days after they are earned today; the tiers are the default program's
(bronze 3% from 0, silver 5% from 15,000, gold 7% from 50,000), points pay at most half.

The proposal: bronze 2%, silver 10% from 8,000, gold 7% from 50,000, 60 days, points pay at
most 20%. Period: 2026-01-01 00:00 to 2027-01-01 00:00 (Moscow).

    A  2025-12-20 20,000 (before the period: today +600 at bronze, expires 01-19;
                          proposal +400 at 2%, expires 02-18)
       2026-01-10  1,000 spending 400 (silver: 20,000 in the window)
           today:    spends 400, earns floor(600 × 5%) = 30, expires 02-09
           proposal: spends min(400, 20% of 1,000) = 200, earns floor(800 × 10%) = 80 (03-11)
           expired today: 200 left of the 600 on 01-19 and the 30 on 02-09 = 230
           expired in the proposal: 200 left of the 400 on 02-18 and the 80 on 03-11 = 280
    B  2026-06-01 10,000  today bronze +300 (07-01); proposal bronze +200 (07-31)
       2026-06-02 10,000  today bronze +300 (07-02); proposal silver (10,000 ≥ 8,000) +1,000
       2026-12-20  1,000  today silver +50 (2027-01-19); proposal silver +100 (2027-02-18)
           expired: today 600, proposal 1,200; left at the end: today 50, proposal 100
"""

from datetime import datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from analytics import whatif
from analytics.whatif import Rules, Step
from loyalty.jobs.runner import run_job
from loyalty.models import ProgramSettings, Tier
from tests.analytics.conftest import AS_OF, MSK, Program, msk

END = datetime(2027, 1, 1, 0, 0, tzinfo=MSK)


@pytest.fixture
def history(stores):
    settings = ProgramSettings.load()
    settings.expiry_days = 30
    settings.save()
    program = Program(stores)
    program.enrol("A", "+79160000021", "MSK-01", msk(12, 1, 10, year=2025))
    program.buy("A", "MSK-01", msk(12, 20, year=2025), "20000.00")
    program.buy("A", "MSK-01", msk(1, 10), "1000.00", redeem_points=400)
    program.enrol("B", "+79160000022", "MSK-01", msk(5, 1, 10))
    program.buy("B", "MSK-01", msk(6, 1), "10000.00")
    program.buy("B", "MSK-01", msk(6, 2), "10000.00")
    program.buy("B", "MSK-01", msk(12, 20), "1000.00")
    return program


def proposal():
    tiers = {tier.code: tier.pk for tier in Tier.objects.all()}
    return Rules(
        steps=(
            Step(tiers["bronze"], Decimal("0"), Decimal("0.02")),
            Step(tiers["silver"], Decimal("8000"), Decimal("0.10")),
            Step(tiers["gold"], Decimal("50000"), Decimal("0.07")),
        ),
        expiry_days=60,
        cap=Decimal("0.2"),
    )


def test_the_replay_gives_the_hand_worked_figures_for_both_rule_sets(history):
    result = whatif.replay(proposal(), as_of=END)
    tiers = {tier.code: tier.pk for tier in Tier.objects.all()}

    assert (result.purchases, result.recorded_issued, result.recorded_redeemed) == (4, 680, 400)
    today, new = result.today, result.proposal
    assert (today.issued, today.redeemed, today.expired, today.liability) == (680, 400, 830, 50)
    assert (new.issued, new.redeemed, new.expired, new.liability) == (1380, 200, 1480, 100)
    assert (today.shortfall, new.shortfall) == (0, 0)
    # Points whose expiry fell in the period: A's 600 and 30 (400 and 80), B's two lots.
    assert (today.due, new.due) == (1230, 1680)
    assert today.breakage_rate == Decimal("0.674797")  # 830 / 1230
    assert new.breakage_rate == Decimal("0.880952")  # 1480 / 1680
    assert (today.expected_breakage, new.expected_breakage) == (33, 88)
    assert new.liability_value == Decimal("100.00")
    assert new.deferred_value == Decimal("12.00")
    # At the end A has 1,000 in the window (bronze), B 21,000 (silver either way).
    assert today.tiers == {tiers["bronze"]: 1, tiers["silver"]: 1, tiers["gold"]: 0}
    assert new.tiers == today.tiers


def test_today_replayed_matches_what_was_recorded(history):
    """Today's rules replayed earn and spend exactly what the engine recorded."""
    result = whatif.replay(Rules.today(), as_of=END)

    assert result.today == result.proposal
    assert (result.today.issued, result.today.redeemed) == (680, 400)
    assert (result.recorded_issued, result.recorded_redeemed) == (680, 400)


def test_a_lower_threshold_moves_members_up_at_the_end(history):
    tiers = {tier.code: tier.pk for tier in Tier.objects.all()}
    rules = Rules.today()
    lowered = Rules(
        steps=(
            rules.steps[0],
            rules.steps[1],
            Step(tiers["gold"], Decimal("21000"), Decimal("0.07")),
        ),
        expiry_days=rules.expiry_days,
        cap=rules.cap,
    )

    result = whatif.replay(lowered, as_of=END)

    assert result.proposal.tiers == {tiers["bronze"]: 1, tiers["silver"]: 0, tiers["gold"]: 1}
    # B's 12-20 purchase (21,000 before it? no: 20,000) still earns at silver: nothing changes.
    assert result.proposal.issued == result.today.issued


def _query(rules_today=None, **changes):
    """The page's query string for today's rules with ``changes`` (field name: value)."""
    program = ProgramSettings.load()
    query = {"expiry_days": program.expiry_days, "cap_pct": program.max_redeem_share * 100}
    for tier in Tier.objects.order_by("threshold"):
        query[f"threshold_{tier.pk}"] = tier.threshold
        query[f"rate_{tier.pk}"] = tier.earn_rate * 100
    query = {name: format(Decimal(value).normalize(), "f") for name, value in query.items()}
    query.update(changes)
    return query


def figure(response, key, column):
    row = next(row for row in response.context["rows"] if row["key"] == key)
    return row[column]


def test_the_page_compares_a_doubled_bronze_rate(program, client_as, marketer):
    """The analytics test program (tests/analytics/conftest.py): every purchase of January to
    March 2026 is in the 12 months before today; all at bronze. Recorded: A 30 + 60 + 29, E 24,
    B 15, C 90 = 248 earned, 30 spent. At 6%: A 60 + 120 + floor(970 × 6%) = 58, E 48, B 30,
    C 180 = 496."""
    bronze = Tier.objects.get(code="bronze")
    client = client_as("marketer")
    response = client.get(reverse("analytics:whatif"), _query(**{f"rate_{bronze.pk}": "6"}))

    assert response.status_code == 200
    result = response.context["result"]
    assert (result.recorded_issued, result.recorded_redeemed) == (248, 30)
    assert (figure(response, "issued", "today"), figure(response, "issued", "proposal")) == (
        248,
        496,
    )
    assert figure(response, "issued", "difference") == 248
    assert figure(response, "redeemed", "difference") == 0
    assert 'data-figure="issued"' in response.content.decode()

    export = client.get(reverse("analytics:whatif-export"), _query(**{f"rate_{bronze.pk}": "6"}))
    lines = b"".join(export.streaming_content).decode().splitlines()
    assert lines[0] == "figure,today,proposal,difference"
    assert lines[1] == "issued,248,496,248"
    assert f"members_bronze,{result.members},{result.members},0" in lines


def test_bad_proposals_are_refused_in_russian_and_nothing_runs(program, client_as, marketer):
    silver, gold = Tier.objects.get(code="silver"), Tier.objects.get(code="gold")
    client = client_as("marketer")
    query = _query(**{f"threshold_{gold.pk}": "1000", "cap_pct": "120", "expiry_days": "0"})

    response = client.get(reverse("analytics:whatif"), query, HTTP_ACCEPT_LANGUAGE="ru")

    assert response.status_code == 200
    assert response.context["result"] is None
    errors = response.context["form"].errors
    assert set(errors) == {f"threshold_{gold.pk}", "cap_pct", "expiry_days"}
    assert errors[f"threshold_{gold.pk}"] == ["Каждый уровень должен начинаться выше нижнего."]
    assert f"threshold_{silver.pk}" not in errors
    export = client.get(reverse("analytics:whatif-export"), query)
    assert export.status_code == 400


def test_the_form_alone_runs_nothing_and_a_manager_may_not_see_it(
    program, client_as, marketer, manager, django_assert_max_num_queries
):
    client = client_as("marketer")
    with django_assert_max_num_queries(8):
        response = client.get(reverse("analytics:whatif"))
    assert response.status_code == 200
    assert response.context["result"] is None
    assert response.context["form"]["expiry_days"].value() == 30
    assert client_as("manager").get(reverse("analytics:whatif")).status_code == 403
    assert client_as("manager").get(reverse("analytics:whatif-export")).status_code == 403


@pytest.mark.django_db(transaction=True)
def test_slices_on_several_connections_add_up_to_the_whole(history):
    """A big program's replay runs in member slices, one connection a slice, at once: the
    figures are the one-statement figures (the data is committed, so every connection sees it)."""
    whole = whatif.replay(proposal(), as_of=END, workers=1)
    sliced = whatif.replay(proposal(), as_of=END, workers=2)

    assert len(whatif._slices(2)) == 2
    assert sliced == whole
    assert sliced.proposal.issued == 1380


def test_the_nightly_inputs_give_the_same_figures_as_the_purchases(history):
    """The page reads the inputs the nightly job keeps (the qualifying value before each
    purchase already worked out): the same figures as the replay from the purchases."""
    live = whatif.replay(proposal(), as_of=END)
    assert whatif.stored_as_of() is None

    run = run_job("refresh_analytics", as_of=END)
    stored = whatif.replay(proposal())

    assert run.counts["replay_inputs"] == 5
    assert stored.stored and not live.stored
    assert (stored.start, stored.end) == (live.start, live.end)
    assert (stored.today, stored.proposal) == (live.today, live.proposal)
    assert stored.recorded_issued == live.recorded_issued == 680


def test_the_nightly_job_keeps_the_inputs(program):
    run = run_job("refresh_analytics", as_of=AS_OF)

    assert whatif.stored_as_of() == AS_OF
    assert run.counts["replay_inputs"] == 6  # A's three, B's, C's and E's receipts
    assert whatif.replay(Rules.today()).today.issued == 248


def test_the_page_reads_the_nightly_inputs_once_the_job_has_run(program, client_as, marketer):
    client = client_as("marketer")
    before = client.get(reverse("analytics:whatif"), _query()).context["result"]
    run_job("refresh_analytics", as_of=AS_OF)
    after = client.get(reverse("analytics:whatif"), _query()).context["result"]

    assert (before.stored, after.stored) == (False, True)
    assert after.end == AS_OF
    assert after.today.issued == before.today.issued == 248
