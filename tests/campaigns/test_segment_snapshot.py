"""Purchase criteria read the nightly member snapshot once there is one, counted exactly.

The snapshot is built by the ``refresh_analytics`` job as of 2025-03-02 06:00 (Moscow): its
figures run through 2025-03-01, so its windows end at 2025-03-02 00:00. Counts are asked for
on 2025-03-20, so a window ending "now" and one ending at the snapshot differ.
"""

import threading
from decimal import Decimal

import pytest
from django.db import connection, connections

from analytics import jobs as analytics_jobs
from analytics.models import StoreBuyer
from campaigns.forms import SegmentForm
from campaigns.models import Segment
from loyalty.engine.purchases import record_purchase
from loyalty.engine.refunds import refund_purchase
from loyalty.jobs.runner import run_job
from members.segments import activity_window, purchase_snapshot, segment_count, segment_members
from members.services import merge_members, set_member_blocked
from tests.campaigns.conftest import at

SNAPSHOT_AS_OF = at("2025-03-02 06:00")
NOW = at("2025-03-20 12:00")


def count(**definition):
    return segment_count(definition, now=NOW)


def refresh():
    run_job("refresh_analytics", as_of=SNAPSHOT_AS_OF)


def refund(stores, receipt, amount, when):
    refund_purchase(
        store=stores["MSK-01"],
        external_id=receipt["external_id"],
        refund_id=f"R-{receipt['external_id']}",
        amount=Decimal(amount),
        now=at(when),
    )


def anonymous_receipt(stores, when):
    """A receipt at SPB-01 without a card."""
    record_purchase(
        store=stores["SPB-01"],
        external_id="K-anonymous",
        amount=Decimal("100.00"),
        occurred_at=at(when),
        now=at(when),
    )


def test_lapsed_counts_days_before_the_snapshot_end_not_before_now(enrol, buy):
    lapsed_at_snapshot, lapsed_only_now, _never = enrol(), enrol(), enrol()
    buy(lapsed_at_snapshot, "100.00", "2024-11-01 10:00")  # 121 days before the snapshot end
    buy(lapsed_only_now, "100.00", "2024-12-15 10:00")  # 77 days before it, 95 before now

    assert count(lapsed_days=90) == 2  # no snapshot yet: live, up to now
    refresh()

    assert count(lapsed_days=90) == 1


def test_lapsed_drops_members_who_bought_after_the_snapshot(enrol, buy):
    stays_away, came_back = enrol(), enrol()
    buy(stays_away, "100.00", "2024-10-01 10:00")
    buy(came_back, "100.00", "2024-10-01 10:00")
    refresh()
    buy(came_back, "100.00", "2025-03-05 10:00")

    assert count(lapsed_days=90) == 1


def test_bought_at_reads_the_snapshot_pairs_and_the_receipts_since(enrol, buy, stores):
    before, since, late, elsewhere, _never = enrol(), enrol(), enrol(), enrol(), enrol()
    buy(before, "100.00", "2024-10-01 10:00", store="SPB-01")
    buy(elsewhere, "100.00", "2024-10-01 10:00", store="MSK-01")
    refresh()
    buy(since, "100.00", "2025-03-05 10:00", store="SPB-01")
    buy(late, "100.00", "2025-02-20 10:00", store="SPB-01")  # recorded late, dated before the end
    buy(elsewhere, "100.00", "2025-03-05 10:00", store="MSK-02")
    # An anonymous receipt since: its NULL member is in the union and must match no one (it
    # would empty the segment if the union were ever used under NOT IN).
    anonymous_receipt(stores, "2025-03-05 11:00")
    spb = [stores["SPB-01"].pk]

    assert "analytics_storebuyer" in str(segment_members({"bought_at_stores": spb}).query)
    assert StoreBuyer.objects.filter(store_id=stores["SPB-01"].pk).count() == 1
    assert count(bought_at_stores=spb) == 3
    assert count(bought_at_stores=spb + [stores["MSK-01"].pk]) == 4
    assert count(bought_at_stores=[stores["MSK-02"].pk]) == 1


def test_bought_at_follows_a_card_merged_after_the_snapshot(enrol, buy, stores, support):
    keep, duplicate = enrol(), enrol()
    buy(duplicate, "100.00", "2024-10-01 10:00", store="SPB-01")
    refresh()
    merge_members(source_id=duplicate.pk, target_id=keep.pk, reason="same person", staff=support)

    assert list(
        segment_members({"bought_at_stores": [stores["SPB-01"].pk]}).values_list("pk", flat=True)
    ) == [keep.pk]


def test_purchase_bounds_count_the_snapshot_window(enrol, buy):
    once, twice, thrice, _never = enrol(), enrol(), enrol(), enrol()
    buy(once, "100.00", "2025-02-10 10:00")
    for when in ("2025-01-10 10:00", "2025-02-11 10:00"):
        buy(twice, "100.00", when)
    for when in ("2025-02-10 10:00", "2025-02-11 10:00", "2025-02-12 10:00"):
        buy(thrice, "100.00", when)
    buy(once, "100.00", "2024-06-01 10:00")  # outside 90 days: not counted
    refresh()
    buy(once, "100.00", "2025-03-05 10:00")  # after the snapshot: not counted

    assert count(purchases_min=2, purchases_max=3) == 2
    assert count(purchases_min=2, purchases_max=2) == 1
    assert count(purchases_min=1, purchases_max=1, activity_days=30) == 2  # once, twice
    assert count(purchases_min=3, activity_days=365) == 1


def test_an_upper_bound_alone_keeps_non_buyers_and_members_enrolled_since(enrol, buy):
    light, heavy, _never = enrol(), enrol(), enrol()
    buy(light, "100.00", "2025-02-01 10:00")
    buy(heavy, "100.00", "2025-02-01 10:00")
    buy(heavy, "100.00", "2025-02-02 10:00")
    refresh()
    enrol(when="2025-03-10 10:00")  # no snapshot row: nothing bought as of the snapshot

    assert count(purchases_max=1) == 3
    assert count(purchases_min=0, purchases_max=0) == 2


def test_snapshot_spend_is_net_of_refunds_made_before_and_after_it(enrol, buy, stores):
    big, refunded_before, refunded_after, small = enrol(), enrol(), enrol(), enrol()
    buy(big, "5000.00", "2025-02-01 10:00")
    before = buy(refunded_before, "5000.00", "2025-02-01 10:00")
    after = buy(refunded_after, "5000.00", "2025-02-01 10:00")
    buy(small, "500.00", "2025-02-01 10:00")

    refund(stores, before, "3000.00", "2025-02-02 10:00")
    refresh()
    refund(stores, after, "3000.00", "2025-03-05 10:00")

    assert count(spend_min="5000.00") == 1
    assert count(spend_min="1000.00", spend_max="2000.00") == 2
    assert count(spend_max="2000.00") == 3
    assert count(spend_min="4000.00", activity_days=30) == 1  # 28 days before the end


def test_member_criteria_cost_one_query_and_purchase_criteria_two(
    enrol, buy, django_assert_num_queries
):
    buy(enrol(), "100.00", "2025-02-01 10:00")
    refresh()

    with django_assert_num_queries(1):
        assert count(consent="yes") == 1
    with django_assert_num_queries(2):  # the snapshot's date, then the count
        assert count(purchases_min=1) == 1


def test_there_is_no_snapshot_before_the_first_refresh(enrol):
    enrol()

    assert purchase_snapshot() is None
    refresh()
    assert purchase_snapshot().through.isoformat() == "2025-03-01"


# --- The activity window --------------------------------------------------------------------


@pytest.mark.parametrize(
    "stored, window",
    [
        (None, 90),
        ("", 90),
        (7, 30),
        (30, 30),
        (45, 30),
        (60, 90),
        (180, 90),
        (228, 365),
        (999, 365),
    ],
)
def test_a_stored_window_counts_over_the_nearest_snapshot_window(stored, window):
    assert activity_window(stored) == window


def test_an_older_stored_window_counts_like_the_nearest_one(enrol, buy):
    member = enrol()
    buy(member, "100.00", "2025-01-10 10:00")  # 51 days before the snapshot end
    refresh()

    assert count(purchases_min=1, activity_days=60) == count(purchases_min=1, activity_days=90)
    assert count(purchases_min=1, activity_days=60) == 1
    assert count(purchases_min=1, activity_days=40) == 0


def test_the_form_offers_the_three_snapshot_windows(db):
    form = SegmentForm()

    assert [value for value, _label in form.fields["activity_days"].choices] == [30, 90, 365]
    assert form.fields["activity_days"].initial == 90


@pytest.mark.parametrize("days, valid", [("30", True), ("365", True), ("60", False)])
def test_the_form_accepts_only_a_snapshot_window(db, days, valid):
    form = SegmentForm({"name": "S", "activity_days": days, "purchases_min": "1"})

    assert form.is_valid() is valid
    if valid:
        assert form.definition()["activity_days"] == int(days)


def test_the_form_shows_an_older_window_as_the_one_counted(db):
    segment = Segment.objects.create(name="Old", definition={"activity_days": 60})

    assert SegmentForm.initial_from(segment)["activity_days"] == 90


# --- The segment page -------------------------------------------------------------------------


def test_the_page_says_purchase_figures_are_live_before_the_first_snapshot(client_as, enrol):
    enrol()

    response = client_as("marketer").get("/campaigns/segments/new/", HTTP_ACCEPT_LANGUAGE="en")

    assert "Purchase figures are live" in response.text


def test_the_page_gives_the_date_of_the_purchase_figures(client_as, enrol, buy):
    buy(enrol(), "100.00", "2025-02-01 10:00")
    refresh()
    segment = Segment.objects.create(name="Buyers", definition={"purchases_min": 1})

    response = client_as("marketer").get(
        f"/campaigns/segments/{segment.pk}/", HTTP_ACCEPT_LANGUAGE="en"
    )

    assert "Purchase figures as of 1 Mar 2025" in response.text
    assert response.context["count"] == 1


def test_a_count_reads_the_previous_snapshot_while_the_next_is_built(
    transactional_db, enrol, buy, stores, monkeypatch
):
    """The nightly rebuild runs for about a minute at a million members; a count (or a
    campaign send) meanwhile reads the previous snapshot rather than waiting for it."""
    if connection.vendor != "postgresql":
        pytest.skip("concurrent readers of a table being rebuilt need PostgreSQL")
    buyer = enrol()
    buy(buyer, "100.00", "2024-10-01 10:00", store="SPB-01")
    refresh()
    inside, release = threading.Event(), threading.Event()
    original = analytics_jobs._refresh_segments

    def wait_inside_the_rebuild(cursor):
        inside.set()
        release.wait(30)
        return original(cursor)

    monkeypatch.setattr(analytics_jobs, "_refresh_segments", wait_inside_the_rebuild)

    def rebuild():
        try:
            run_job("refresh_analytics", as_of=at("2025-03-03 06:00"))
        finally:
            connections.close_all()

    worker = threading.Thread(target=rebuild)
    worker.start()
    try:
        assert inside.wait(30)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '1s'")  # a wait would fail the count
        assert count(bought_at_stores=[stores["SPB-01"].pk], lapsed_days=30) == 1
    finally:
        release.set()
        worker.join(60)
    assert purchase_snapshot().through.isoformat() == "2025-03-02"


# --- The count from the snapshot's side -----------------------------------------------------


@pytest.fixture
def buyers_of_every_kind(enrol, buy, stores, support):
    """Members whose counts differ between the snapshot, the receipts since and the members
    table: a refund before and one after the snapshot, a buyer blocked and a card merged after
    it, a member who came back since, one enrolled since, and an anonymous receipt since."""

    lapsed, refunded_before, refunded_after, regular = enrol(), enrol(), enrol(), enrol()
    blocked, came_back, duplicate, keep, _never = enrol(), enrol(), enrol(), enrol(), enrol()
    buy(lapsed, "100.00", "2024-09-01 10:00", store="SPB-01")  # a buyer at both stores
    buy(lapsed, "12000.00", "2024-10-01 10:00")
    before = buy(refunded_before, "12000.00", "2025-02-10 10:00")
    refund(stores, before, "5000.00", "2025-02-11 10:00")
    after = buy(refunded_after, "12000.00", "2025-02-10 10:00")
    for day in ("2025-02-10", "2025-02-11", "2025-02-12"):
        buy(regular, "4000.00", f"{day} 10:00")
    buy(blocked, "12000.00", "2024-10-01 10:00")
    buy(came_back, "500.00", "2024-10-01 10:00")
    buy(duplicate, "500.00", "2024-10-01 10:00", store="SPB-01")
    refresh()
    refund(stores, after, "5000.00", "2025-03-05 10:00")
    set_member_blocked(member_id=blocked.pk, blocked=True, reason="fraud", staff=support)
    buy(came_back, "500.00", "2025-03-05 10:00")
    merge_members(source_id=duplicate.pk, target_id=keep.pk, reason="same person", staff=support)
    newcomer = enrol(when="2025-03-10 10:00")
    buy(newcomer, "200.00", "2025-03-11 10:00", store="SPB-01")
    anonymous_receipt(stores, "2025-03-12 11:00")


@pytest.mark.parametrize(
    "definition, expected",
    [
        ({"lapsed_days": 90}, 1),  # lapsed (blocked, came back, merged card: not counted)
        ({"lapsed_days": 90, "purchases_max": 0}, 1),
        ({"lapsed_days": 90, "spend_max": "12000.00", "activity_days": 365}, 0),  # 12,100
        ({"lapsed_days": 90, "spend_max": "12100.00", "activity_days": 365}, 1),
        ({"bought_at_stores": ["SPB-01"]}, 3),  # lapsed, the merged card's member, the newcomer
        ({"bought_at_stores": ["MSK-01"]}, 5),
        ({"bought_at_stores": ["SPB-01", "MSK-01"]}, 7),  # lapsed once
        ({"bought_at_stores": ["MSK-01"], "lapsed_days": 90}, 1),
        ({"bought_at_stores": ["SPB-01"], "purchases_max": 0}, 3),
        ({"purchases_min": 3}, 1),
        ({"purchases_min": 1, "activity_days": 365}, 5),
        ({"spend_min": "10000.00", "activity_days": 365}, 2),  # net of both refunds
        ({"spend_min": "5000.00", "spend_max": "8000.00", "activity_days": 365}, 2),
        ({"spend_max": "8000.00", "activity_days": 365}, 6),
        ({"purchases_max": 0}, 5),  # never, keep, newcomer, lapsed and came back (in 90 days)
        ({"purchases_min": 0}, 8),  # a lower bound of 0 alone: every active member
        ({"lapsed_days": 90, "consent": "yes"}, 1),
    ],
)
def test_a_count_gives_the_members_a_send_reaches(
    buyers_of_every_kind, stores, definition, expected
):
    definition = {
        key: [stores[code].pk for code in value] if key == "bought_at_stores" else value
        for key, value in definition.items()
    }

    assert segment_count(definition, now=NOW) == expected
    assert segment_members(definition, now=NOW).count() == expected


def test_a_count_of_purchase_criteria_alone_does_not_read_the_members_table(
    buyers_of_every_kind, stores, django_assert_num_queries
):
    statements = []

    def capture(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture), django_assert_num_queries(2):
        assert count(purchases_min=1, activity_days=365) == 5
    assert statements[-1].startswith('SELECT COUNT(*) AS "__count" FROM "analytics_memberstats"')
    # Its only use of the members table: the few who are not active.
    assert statements[-1].count('"members_member"') == 1
    with django_assert_num_queries(3):  # the snapshot, the active members, the ones above
        assert count(purchases_max=0) == 5
    with django_assert_num_queries(3):  # the snapshot, the pairs, the others since
        assert count(bought_at_stores=[stores["SPB-01"].pk]) == 3


def test_the_rebuild_leaves_the_snapshot_tables_vacuumed(transactional_db, enrol, buy):
    """Without it the previous snapshot's rows stay dead in the tables the counts scan (until
    autovacuum, if it runs) and "bought at" cannot read the pairs from their index alone."""
    if connection.vendor != "postgresql":
        pytest.skip("VACUUM and the visibility map are PostgreSQL's")
    buy(enrol(), "100.00", "2024-10-01 10:00", store="SPB-01")
    refresh()
    run_job("refresh_analytics", as_of=at("2025-03-03 06:00"))

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, relpages, relallvisible FROM pg_class "
            "WHERE relname IN ('analytics_memberstats', 'analytics_storebuyer') ORDER BY relname"
        )
        assert cursor.fetchall() == [
            ("analytics_memberstats", 1, 1),
            ("analytics_storebuyer", 1, 1),
        ]
