"""Campaign variants: the split into control and up to four offers, each variant's own offer in
the send, and each variant's results, cost and ROI against the same control group (the
statistics checked against scipy on the same data)."""

import math
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import translation
from scipy import stats

from analytics.models import ProgramEconomics
from campaigns.models import Campaign, CampaignRecipient, CampaignVariant
from campaigns.queries import campaign_results
from campaigns.services import split_bucket, variant_bounds, variant_of
from loyalty.models import AuditLog, Coupon, LedgerEntry, Tier
from messaging.models import Message, Outbox
from tests.campaigns.conftest import at
from tests.campaigns.test_pages import bonus_form
from tests.factories import PurchaseFactory
from tests.helpers import session_queries


@pytest.fixture
def with_variants(make_campaign):
    """A campaign with control 20% and variants 2 (30%) and 3 (25%): variant 1 takes 25%."""

    def make(variants=({"share": 30}, {"share": 25}), **fields):
        campaign = make_campaign(control_percent=20, **fields)
        for number, values in enumerate(variants, start=2):
            CampaignVariant.objects.create(campaign=campaign, number=number, **values)
        return campaign

    return make


def arms(campaign):
    """{member id: (group, variant)} of a sent campaign."""
    return {
        member_id: (group, variant)
        for member_id, group, variant in CampaignRecipient.objects.filter(
            campaign=campaign
        ).values_list("member_id", "group", "variant")
    }


def expected_arm(campaign, member_id):
    bucket = split_bucket(campaign.pk, member_id)
    if bucket < campaign.control_percent * 100:
        return ("control", 0)
    return ("test", variant_of(bucket, variant_bounds(campaign.offers(), 20)))


def test_the_split_gives_each_variant_its_share_by_the_same_hash(many_members, with_variants, send):
    ids = many_members(2000)
    campaign = with_variants()

    send(campaign)

    got = arms(campaign)
    # On PostgreSQL the split is made in SQL: it must agree with the Python hash member by member.
    assert got == {pk: expected_arm(campaign, pk) for pk in ids}
    sizes = {arm: list(got.values()).count(arm) for arm in set(got.values())}
    assert set(sizes) == {("control", 0), ("test", 1), ("test", 2), ("test", 3)}
    # 20/25/30/25% of 2,000: 400/500/600/500, give or take chance (a standard deviation ~20).
    assert 320 <= sizes[("control", 0)] <= 480
    assert 420 <= sizes[("test", 1)] <= 580
    assert 520 <= sizes[("test", 2)] <= 680
    assert 420 <= sizes[("test", 3)] <= 580


def test_variant_buckets_follow_control_in_number_order():
    offers = [
        CampaignVariant(number=1, share=25),
        CampaignVariant(number=2, share=30),
        CampaignVariant(number=3, share=25),
    ]
    bounds = variant_bounds(offers, 20)

    assert bounds == [(1, 4500), (2, 7500), (3, 10000)]
    assert [variant_of(bucket, bounds) for bucket in (2000, 4499, 4500, 7499, 7500, 9999)] == [
        1,
        1,
        2,
        2,
        3,
        3,
    ]


def test_each_variant_gets_its_own_bonus_points(many_members, with_variants, send, no_drift):
    many_members(200)
    campaign = with_variants(
        ({"share": 30, "points": 300}, {"share": 25, "points": 50}),
        kind=Campaign.Kind.BONUS_POINTS,
        points=100,
    )

    send(campaign)

    points = dict(LedgerEntry.objects.filter(kind="bonus").values_list("member_id", "points"))
    by_variant = {1: 100, 2: 300, 3: 50}
    assert points == {
        member_id: by_variant[variant]
        for member_id, (group, variant) in arms(campaign).items()
        if group == "test"
    }
    no_drift()


def test_each_variant_gets_a_coupon_of_its_own_value(many_members, with_variants, send):
    many_members(100)
    campaign = with_variants(
        ({"share": 30, "coupon_value": Decimal("20")}, {"share": 25, "coupon_value": "15"}),
        kind=Campaign.Kind.COUPON,
        coupon_kind="percent",
        coupon_value=Decimal("10"),
    )

    send(campaign)

    values = dict(Coupon.objects.values_list("member_id", "value"))
    by_variant = {1: Decimal("10.00"), 2: Decimal("20.00"), 3: Decimal("15.00")}
    assert values == {
        member_id: by_variant[variant]
        for member_id, (group, variant) in arms(campaign).items()
        if group == "test"
    }


def test_a_variant_with_its_own_text_sends_it_and_one_without_sends_the_campaigns(
    many_members, with_variants, send
):
    russian = many_members(60)
    english = many_members(60, language="en")
    campaign = with_variants(
        ({"share": 30, "subject_ru": "Тема 2", "message_ru": "Текст 2"}, {"share": 25}),
        subject_en="Hello",
        message_en="Hello text",
    )

    send(campaign)

    sent = {row.member_id: row.context for row in Outbox.objects.filter(purpose="campaign")}
    expected = {}
    for member_id, (group, variant) in arms(campaign).items():
        if group != "test":
            continue
        if variant == 2:  # only a Russian text: English speakers read it too
            subject, text = "Тема 2", "Текст 2"
        elif member_id in english:
            subject, text = "Hello", "Hello text"
        else:  # no Russian subject: the English one
            subject, text = "Hello", "Привет"
        expected[member_id] = {"subject": subject, "text": text, "campaign": campaign.pk}
    assert sent == expected
    assert set(sent) & set(russian)


def test_each_variant_earns_by_its_own_multiplier(enrol, buy, with_variants, send):
    members = [enrol() for _ in range(20)]
    campaign = with_variants(
        ({"share": 30, "factor": Decimal("3")}, {"share": 25, "factor": Decimal("4")}),
        kind=Campaign.Kind.MULTIPLIER,
        factor=Decimal("2"),
        starts_at=at("2025-03-08 00:00"),
        ends_at=at("2025-03-10 00:00"),
        message_ru="",
    )
    send(campaign, now=at("2025-03-07 12:00"))
    groups = arms(campaign)

    earned = {}
    for member in members:
        earned[groups[member.pk]] = buy(member, "1000.00", "2025-03-08 10:00")["earned_points"]

    # 3% of 1,000 = 30 points, times the variant's factor; control earns the usual.
    assert earned == {("control", 0): 30, ("test", 1): 60, ("test", 2): 90, ("test", 3): 120}


# --- Results: each variant against control ---


@pytest.fixture
def two_variants_with_purchases(enrol, buy, make_campaign, send):
    """Twelve members: four in control, four in variant 1, four in variant 2 (set by hand, so
    the figures are known). In the window: control buys 400; variant 1 buys 1,000, 500 and
    250 + 250; variant 2 buys 2,000, 1,500, 800 and 300."""
    members = [enrol() for _ in range(12)]
    campaign = make_campaign(control_percent=30)
    CampaignVariant.objects.create(campaign=campaign, number=2, share=35)
    send(campaign, now=at("2025-03-01 12:00"))
    recipients = CampaignRecipient.objects.filter(campaign=campaign)
    for variant, chunk in enumerate((members[:4], members[4:8], members[8:])):
        recipients.filter(member__in=chunk).update(
            group="control" if variant == 0 else "test", variant=variant
        )
    buy(members[0], "400.00", "2025-03-03 10:00")
    for member, amount in zip(members[4:7], ("1000.00", "500.00", "250.00"), strict=True):
        buy(member, amount, "2025-03-04 10:00")
    buy(members[6], "250.00", "2025-03-05 10:00")
    for member, amount in zip(members[8:], ("2000.00", "1500.00", "800.00", "300.00"), strict=True):
        buy(member, amount, "2025-03-06 10:00")
    campaign.refresh_from_db()
    return campaign


REVENUE = {
    "control": [400, 0, 0, 0],
    1: [1000, 500, 500, 0],
    2: [2000, 1500, 800, 300],
}
BUYERS = {"control": 1, 1: 3, 2: 4}


def test_each_variant_is_compared_with_control_as_scipy_compares_them(
    two_variants_with_purchases,
):
    results = campaign_results(two_variants_with_purchases)

    assert [v["number"] for v in results["variants"]] == [1, 2]
    control = REVENUE["control"]
    for variant in results["variants"]:
        number = variant["number"]
        # Conversion: the pooled two-proportion z statistic, its p-value from scipy's normal.
        x1, x2, n = BUYERS[number], BUYERS["control"], 4
        pooled = (x1 + x2) / (2 * n)
        z = (x1 / n - x2 / n) / math.sqrt(pooled * (1 - pooled) * (2 / n))
        assert variant["conversion"]["diff"] == pytest.approx(x1 / n - x2 / n, abs=1e-12)
        assert variant["conversion"]["p_value"] == pytest.approx(2 * stats.norm.sf(z), rel=1e-9)
        # Revenue per member: Welch's t as scipy's ttest_ind(equal_var=False) gives it.
        reference = stats.ttest_ind(REVENUE[number], control, equal_var=False)
        low, high = reference.confidence_interval(0.95)
        assert variant["revenue"]["t"] == pytest.approx(reference.statistic, rel=1e-9)
        assert variant["revenue"]["p_value"] == pytest.approx(reference.pvalue, rel=1e-9)
        assert variant["revenue"]["low"] == pytest.approx(low, rel=1e-9)
        assert variant["revenue"]["high"] == pytest.approx(high, rel=1e-9)


def test_the_figures_of_each_variant_by_hand(two_variants_with_purchases):
    with translation.override("en"):
        results = campaign_results(two_variants_with_purchases)

    first, second = results["variants"]
    assert (first["row"]["members"], first["row"]["buyers"], first["row"]["purchases"]) == (4, 3, 4)
    assert first["row"]["revenue_per_member"] == Decimal("500.00")
    assert second["row"]["revenue_per_member"] == Decimal("1150.00")
    assert second["row"]["average_check"] == Decimal("1150.00")
    # Variant 2 against control: everyone bought against one in four, +75 points; 4,600 / 4
    # against 100 per member: +1,050.
    assert second["conversion"]["diff"] == pytest.approx(0.75, abs=1e-12)
    assert second["revenue"]["diff"] == pytest.approx(1050.0, abs=1e-9)
    assert [label for label, _row in results["rows"]] == ["Variant 1", "Variant 2", "Control"]
    assert results["control"]["revenue_per_member"] == Decimal("100.00")


def test_cost_and_roi_of_each_variant(enrol, buy, make_campaign, send):
    """Bonus points 100 (variant 1) and 200 (variant 2), control 30%; each member who got the
    offer was sent an SMS at 3.50. A member of variant 1 buys 1,000, one of variant 2 3,000, one
    control member 500. Gross margin 25%."""
    ProgramEconomics.objects.update_or_create(
        pk=1, defaults={"gross_margin_pct": Decimal("25"), "sms_price": Decimal("3.50")}
    )
    members = [enrol() for _ in range(30)]
    campaign = make_campaign(kind=Campaign.Kind.BONUS_POINTS, points=100, control_percent=30)
    CampaignVariant.objects.create(campaign=campaign, number=2, share=35, points=200)
    send(campaign, now=at("2025-03-01 12:00"))
    groups = arms(campaign)
    for outbox in Outbox.objects.filter(purpose="campaign"):
        Message.objects.create(
            member_id=outbox.member_id, outbox=outbox, purpose="campaign", channel="sms",
            status="sent", created_at=at("2025-03-01 12:05"), sent_at=at("2025-03-01 12:05"),
        )  # fmt: skip
    by_arm = {}
    for member in members:
        by_arm.setdefault(groups[member.pk], []).append(member)
    n = {arm: len(people) for arm, people in by_arm.items()}
    assert set(n) == {("control", 0), ("test", 1), ("test", 2)}
    buy(by_arm[("test", 1)][0], "1000.00", "2025-03-02 10:00")
    buy(by_arm[("test", 2)][0], "3000.00", "2025-03-02 10:00")
    buy(by_arm[("control", 0)][0], "500.00", "2025-03-02 10:00")

    first, second = campaign_results(campaign)["variants"]

    for variant, points, spent in ((first, 100, 1000), (second, 200, 3000)):
        members_in = n[("test", variant["number"])]
        cost = variant["cost"]
        assert (cost.points, cost.messages) == (points * members_in, {"sms": members_in})
        assert cost.points_cost == Decimal(points * members_in)  # 1 point = 1 RUB
        assert cost.messages_cost == Decimal("3.50") * members_in
        assert cost.total == cost.points_cost + cost.messages_cost
        extra = (Decimal(spent) / members_in - Decimal(500) / n[("control", 0)]) * members_in
        assert variant["extra_revenue"] == extra.quantize(Decimal("0.01"))
        margin = (extra * Decimal("0.25")).quantize(Decimal("0.01"))  # rounded once
        assert variant["extra_margin"] == margin
        roi = ((margin - cost.total) / cost.total * 100).quantize(Decimal("0.1"))
        assert variant["roi_pct"] == roi


# --- The form and the page ---


def variant_form(segment, variants=(), **changes):
    """The campaign form of test_pages with the variants formset (3 rows, ``variants`` filled)."""
    data = bonus_form(segment, **{"variants-TOTAL_FORMS": "3", "variants-INITIAL_FORMS": "0"})
    for index, values in enumerate(variants):
        data.update({f"variants-{index}-{name}": value for name, value in values.items()})
    data.update(changes)
    return data


def test_a_marketer_adds_two_variants_on_the_form_and_it_is_audited(client_as, make_campaign):
    segment = make_campaign().segment

    response = client_as("marketer").post(
        "/campaigns/new/",
        variant_form(
            segment,
            [{"share": "30", "points": "300"}, {}, {"share": "20", "points": "50"}],
        ),
    )

    assert response.status_code == 302
    campaign = Campaign.objects.get(name="Spring bonus")
    assert list(campaign.variants.values_list("number", "share", "points")) == [
        (2, 30, 300),
        (3, 20, 50),
    ]
    assert [offer.share for offer in campaign.offers()] == [40, 30, 20]
    entry = AuditLog.objects.get(action="campaign.create")
    assert [row["points"] for row in entry.after["variants"]] == [300, 50]


@pytest.mark.parametrize(
    "variants, control, where",
    [
        ([{"share": "50", "points": "10"}, {"share": "40", "points": "10"}], "10", "control"),
        ([{"share": "30"}], "10", "points"),
        ([{"share": "0", "points": "10"}], "10", "share"),
    ],
)
def test_bad_variants_are_shown_on_the_form_and_nothing_is_saved(
    client_as, make_campaign, variants, control, where
):
    segment = make_campaign().segment

    response = client_as("marketer").post(
        "/campaigns/new/", variant_form(segment, variants, control_percent=control)
    )

    assert response.status_code == 422
    form = response.context["form"]
    if where == "control":
        assert "control_percent" in form.errors
    else:
        assert where in form.variants.forms[0].errors
    assert Campaign.objects.filter(name="Spring bonus").count() == 0


def test_editing_without_the_variant_fields_keeps_the_variants(client_as, with_variants):
    campaign = with_variants(kind=Campaign.Kind.BONUS_POINTS, points=100)
    CampaignVariant.objects.filter(campaign=campaign).update(points=10)
    data = variant_form(campaign.segment, name="Renamed")
    del data["variants-TOTAL_FORMS"], data["variants-INITIAL_FORMS"]

    response = client_as("marketer").post(f"/campaigns/{campaign.pk}/edit/", data)

    assert response.status_code == 302
    assert campaign.variants.count() == 2


def test_the_page_shows_each_variant_and_its_queries_do_not_grow_with_variants(
    client_as, make_campaign, with_variants, many_members, send
):
    many_members(40)
    one = make_campaign(kind=Campaign.Kind.BONUS_POINTS, points=100)
    three = with_variants(kind=Campaign.Kind.BONUS_POINTS, points=100)
    send(one)
    send(three)
    client = client_as("marketer")
    client.get(f"/campaigns/{one.pk}/")  # the session and the program's rules, read once

    counts = []
    for campaign in (one, three):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(f"/campaigns/{campaign.pk}/")
        assert response.status_code == 200
        counts.append(len(queries))

    # User, permissions (2), role, the campaign with its segment, its variants, then the results:
    # the groups' figures, the program's economics, the points given, the messages sent.
    assert counts == [10 + session_queries()] * 2
    assert "Вариант 3" in response.text
    assert 'id="campaign-conversion"' in response.text
    assert 'data-testid="costs"' in response.text


def test_a_coupons_cost_is_its_part_of_the_discount_not_the_tiers(
    enrol, make_campaign, send, stores
):
    """Bronze gives 5% off; a member of the test group pays 1,000 with the campaign's 10%
    coupon: the campaign's cost is the coupon's part of the discount, not the tier's 50."""
    Tier.objects.filter(code="bronze").update(discount_percent=Decimal("5"))
    member = enrol()
    campaign = make_campaign(
        kind=Campaign.Kind.COUPON, coupon_kind="percent", coupon_value=Decimal("10"),
        control_percent=0,
    )  # fmt: skip
    send(campaign, now=at("2025-03-01 12:00"))
    code = Coupon.objects.get(member=member).code

    body = PurchaseFactory(
        member=member, store=stores["MSK-01"], amount="1000.00", coupon_code=code,
        occurred_at=at("2025-03-02 10:00"), now=at("2025-03-02 10:00"),
    ).body  # fmt: skip

    (variant,) = campaign_results(campaign)["variants"]
    discount = Decimal(body["discount_amount"])
    assert discount == Decimal("150.00")  # the tier's 5% and the coupon's 10% of 1,000
    assert variant["cost"].coupon_discounts == Decimal("100.00")
