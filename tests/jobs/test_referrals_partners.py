"""Referral rewards after the friend's first purchase, partner earn rates and settlement."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from loyalty.engine.ledger import ledger_drift
from loyalty.engine.partners import settlement
from loyalty.engine.referrals import credit_referrer, credit_referrers
from loyalty.models import LedgerEntry, ProgramSettings, ReferralReward
from messaging.models import Outbox
from tests.jobs.conftest import at


@pytest.fixture
def referral_points(db, stores):
    ProgramSettings.objects.filter(pk=1).update(referral_points=100)


def _referred_pair(pos):
    from members.models import Member

    referrer = pos.enrol()
    referral_code = Member.objects.get(card_number=referrer["card_number"]).referral_code
    return referrer, pos.enrol(referral_code=referral_code)


def test_friend_and_referrer_each_get_the_points_after_the_first_purchase(pos, referral_points):
    referrer, friend = _referred_pair(pos)

    body = pos.buy(friend["card_number"], "1000.00")
    credited = credit_referrers(older_than=timedelta(0))

    assert body["earned_points"] == 30
    assert body["balance"]["available"] == 130  # the reply counts the referral points
    assert pos.member(friend["card_number"])["balance"]["available"] == 130
    assert credited == 1
    assert pos.member(referrer["card_number"])["balance"]["available"] == 100
    assert list(ledger_drift()) == []
    assert Outbox.objects.filter(purpose="referral_reward").count() == 2


def test_the_referrer_is_credited_after_commit_in_a_transaction_of_its_own(
    pos, referral_points, django_capture_on_commit_callbacks, monkeypatch
):
    """The friend's purchase locks only the friend; the referrer's credit runs after commit."""
    from celery import current_app

    sent = []
    monkeypatch.setattr(current_app, "send_task", lambda name, args: sent.append((name, args)))
    referrer, friend = _referred_pair(pos)

    with django_capture_on_commit_callbacks(execute=True):
        pos.buy(friend["card_number"], "1000.00")

    assert pos.member(referrer["card_number"])["balance"]["available"] == 0  # not yet
    reward = ReferralReward.objects.get()
    assert sent == [("loyalty.tasks.credit_referrer", [reward.pk])]
    assert credit_referrer(reward_id=reward.pk) == 100
    assert credit_referrer(reward_id=reward.pk) == 0  # a retried task changes nothing
    assert pos.member(referrer["card_number"])["balance"]["available"] == 100
    assert list(ledger_drift()) == []


def test_the_sweep_leaves_a_fresh_reward_to_its_own_task(pos, referral_points):
    referrer, friend = _referred_pair(pos)
    pos.buy(friend["card_number"], "1000.00")

    assert credit_referrers(now=timezone.now()) == 0  # younger than a minute: its task runs
    assert credit_referrers(older_than=timedelta(0)) == 1
    assert credit_referrers(older_than=timedelta(0)) == 0
    assert pos.member(referrer["card_number"])["balance"]["available"] == 100


def test_a_referrer_merged_before_the_credit_is_credited_on_the_survivor(pos, referral_points):
    from members.models import Member
    from members.services import merge_members

    referrer, friend = _referred_pair(pos)
    pos.buy(friend["card_number"], "1000.00")
    survivor = pos.enrol()
    merge_members(
        source_id=Member.objects.get(card_number=referrer["card_number"]).pk,
        target_id=Member.objects.get(card_number=survivor["card_number"]).pk,
        staff=None,
        reason="duplicate",
    )

    assert credit_referrers(older_than=timedelta(0)) == 1
    assert pos.member(survivor["card_number"])["balance"]["available"] == 100
    assert list(ledger_drift()) == []


def test_referral_reward_is_given_once(pos, referral_points):
    referrer, friend = _referred_pair(pos)
    pos.buy(friend["card_number"], "1000.00")
    credit_referrers(older_than=timedelta(0))

    second = pos.buy(friend["card_number"], "1000.00")
    credit_referrers(older_than=timedelta(0))

    assert second["balance"]["available"] == 160
    assert pos.member(referrer["card_number"])["balance"]["available"] == 100
    assert ReferralReward.objects.count() == 1
    assert LedgerEntry.objects.filter(reason="referral").count() == 2


def test_a_replayed_purchase_does_not_reward_again(pos, referral_points):
    referrer, friend = _referred_pair(pos)
    first = pos.buy(friend["card_number"], "1000.00", external_id="SAME")
    credit_referrers(older_than=timedelta(0))

    replay = pos.buy(friend["card_number"], "1000.00", external_id="SAME")
    credit_referrers(older_than=timedelta(0))

    assert replay == first
    assert pos.member(referrer["card_number"])["balance"]["available"] == 100


def test_no_referral_points_when_the_program_gives_none(pos):
    from members.models import Member

    referrer = pos.enrol()
    referral_code = Member.objects.get(card_number=referrer["card_number"]).referral_code
    friend = pos.enrol(referral_code=referral_code)

    pos.buy(friend["card_number"], "1000.00")

    assert pos.member(referrer["card_number"])["balance"]["available"] == 0
    assert not ReferralReward.objects.exists()


def test_a_member_without_a_referrer_gets_nothing_extra(pos, referral_points):
    member = pos.enrol()
    assert pos.buy(member["card_number"], "1000.00")["balance"]["available"] == 30


# --- partners -------------------------------------------------------------------------------


@pytest.fixture
def partner(stores):
    partner = stores["PARTNER-01"]
    partner.earn_rate = Decimal("0.0200")
    partner.save()
    return partner


def test_purchases_at_a_partner_earn_at_the_partner_rate(enrol, buy, partner):
    member = enrol()

    body = buy(member, "1000.00", at("2025-03-03 12:00"), store="PARTNER-01")

    assert body["earned_points"] == 20


def test_partner_quote_uses_the_partner_rate(partner, enrol):
    from loyalty.engine.purchases import quote_purchase

    member = enrol()
    quote = quote_purchase(card_number=member.card_number, amount=Decimal("1000.00"), store=partner)
    assert quote.earn_points == 20


def test_settlement_reports_points_issued_and_spent_per_partner_per_month(
    enrol, buy, partner, stores
):
    from loyalty.engine.purchases import refund_purchase

    member = enrol()
    buy(member, "5000.00", at("2025-02-27 12:00"), store="PARTNER-01")  # February: 100
    buy(member, "5000.00", at("2025-03-03 12:00"), store="PARTNER-01")  # 100
    buy(member, "1000.00", at("2025-03-04 12:00"), store="MSK-01")  # not a partner: 30
    spent = buy(member, "1000.00", at("2025-03-05 12:00"), store="PARTNER-01", redeem=150)
    assert spent["earned_points"] == 17  # 850 paid × 2%
    refund_purchase(
        store=partner,
        external_id=spent["external_id"],
        refund_id="P-R1",
        amount="500.00",
        now=at("2025-03-06 12:00"),
    )  # reverses 8, returns 75

    march = {row.store.code: row for row in settlement(2025, 3)}

    row = march["PARTNER-01"]
    assert (row.issued, row.spent, row.net) == (100 + 17 - 8, 150 - 75, 109 - 75)
    assert row.net_value == Decimal("34.00")
    feb = {r.store.code: r for r in settlement(2025, 2)}["PARTNER-01"]
    assert (feb.issued, feb.spent) == (100, 0)
