"""Property-based: no sequence of earn, redeem, refund, expire and adjust breaks the ledger."""

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
)

from loyalty.engine import ledger
from loyalty.engine.adjustments import adjust_points
from loyalty.engine.errors import LoyaltyError
from loyalty.engine.expiry import expire_points
from loyalty.engine.ledger import ledger_drift
from loyalty.engine.locking import member_with_balance
from loyalty.engine.purchases import record_purchase, refund_purchase
from loyalty.models import LedgerEntry, Purchase, Store
from members.models import Member
from members.services import enrol_member

_ids = itertools.count(1)
_phones = itertools.count(1_000_000)

amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("30000"), places=2)


class LedgerMachine(RuleBasedStateMachine):
    purchases = Bundle("purchases")

    @initialize()
    def setup(self):
        self.store = Store.objects.get_or_create(code="PROP", defaults={"name": "prop"})[0]
        self.now = timezone.now()
        self.members = [
            enrol_member(phone=f"+7912{next(_phones):07d}", now=self.now).pk for _ in range(2)
        ]

    def member(self, index):
        return Member.objects.get(pk=self.members[index % 2])

    @rule(
        target=purchases,
        who=st.integers(0, 1),
        amount=amounts,
        spend_share=st.floats(0, 1.2),
    )
    def buy(self, who, amount, spend_share):
        member = self.member(who)
        available = ledger.balance_of(member, self.now).available
        redeem = max(0, int(available * spend_share))
        try:
            outcome = record_purchase(
                store=self.store,
                external_id=f"P{next(_ids)}",
                card_number=member.card_number,
                amount=amount,
                occurred_at=self.now,
                redeem_points=redeem,
                now=self.now,
            )
        except LoyaltyError as error:
            assert error.code in ("insufficient_points", "redeem_limit_exceeded")
            return None
        body = outcome.body
        assert body["paid_amount"] == str(amount - Decimal(body["redeemed_points"]))
        return body["external_id"]

    @rule(external_id=purchases, share=st.sampled_from(["0.25", "0.333", "0.5", "1"]))
    def refund(self, external_id, share):
        if external_id is None:
            return
        purchase = Purchase.objects.get(store=self.store, external_id=external_id)
        left = purchase.amount - purchase.refunded_amount
        amount = (left * Decimal(share)).quantize(Decimal("0.01"))
        if amount <= 0:
            return
        refund_purchase(
            store=self.store,
            external_id=external_id,
            refund_id=f"F{next(_ids)}",
            amount=amount,
            now=self.now,
        )
        purchase.refresh_from_db()
        total = purchase.refunded_amount
        assert purchase.reversed_points == int(purchase.earned_points * total / purchase.amount)
        assert purchase.returned_points == int(purchase.redeemed_points * total / purchase.amount)

    @rule(external_id=consumes(purchases))
    def refund_all(self, external_id):
        if external_id is None:
            return
        purchase = Purchase.objects.get(store=self.store, external_id=external_id)
        left = purchase.amount - purchase.refunded_amount
        if left > 0:
            refund_purchase(
                store=self.store,
                external_id=external_id,
                refund_id=f"F{next(_ids)}",
                amount=left,
                now=self.now,
            )
        purchase.refresh_from_db()
        assert purchase.reversed_points == purchase.earned_points
        assert purchase.returned_points == purchase.redeemed_points

    @rule(days=st.integers(1, 400))
    def time_passes_and_points_expire(self, days):
        self.now += timedelta(days=days)
        expire_points(as_of=self.now)
        again = expire_points(as_of=self.now)
        assert again == (0, 0)

    @rule(who=st.integers(0, 1), points=st.integers(-500, 500).filter(bool))
    def adjust(self, who, points):
        member = self.member(who)
        try:
            adjust_points(
                member_id=member.pk,
                points=points,
                reason="property test",
                staff=None,
                now=self.now,
            )
        except LoyaltyError as error:
            assert error.code == "insufficient_points"
            assert -points > ledger.balance_of(member, self.now).available

    @invariant()
    def balances_match_ledger_and_lots(self):
        if not hasattr(self, "members"):
            return
        assert list(ledger_drift()) == []

    @invariant()
    def the_balance_from_the_cached_sum_is_the_lots_balance(self):
        """A purchase by a member with many open lots takes the balance from the member's
        cached sum less what is pending or expired but not yet processed; at any moment it is
        what the lots say, as is the look-up's."""
        if not hasattr(self, "members"):
            return
        for member_id in self.members:
            member = Member.objects.get(pk=member_id)
            # Before the latest earnings (pending then), now, and 200 and 400 days on, when
            # lots have expired that the expiry job has not taken yet.
            for days in (-30, 0, 200, 400):
                when = self.now + timedelta(days=days)
                assert ledger.balance_from_cache(member, when) == ledger.balance_of(member, when)
                found = member_with_balance("card_number", member.card_number, when)
                assert found.balance == ledger.balance_of(member, when)

    @invariant()
    def debt_only_when_nothing_is_available_to_repay_it(self):
        if not hasattr(self, "members"):
            return
        for member_id in self.members:
            member = Member.objects.get(pk=member_id)
            total = sum(LedgerEntry.objects.filter(member=member).values_list("points", flat=True))
            assert member.points_balance == total
            assert member.points_debt >= 0


@pytest.mark.django_db
def test_no_sequence_of_operations_breaks_the_ledger():
    machine = LedgerMachine.TestCase
    machine.settings = settings(
        max_examples=40,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    machine().runTest()  # raises on the first sequence that breaks an invariant
    assert list(ledger_drift()) == []
