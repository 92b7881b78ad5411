"""The ledger is append-only in the database, and check_ledger finds any drift."""

import pytest
from django.core.management import call_command
from django.db import DatabaseError, transaction
from django.utils import timezone

from loyalty.engine import ledger
from loyalty.engine.errors import LoyaltyError
from loyalty.models import EntryKind, LedgerEntry, PointsLot
from members.models import Member


def test_ledger_entries_cannot_be_updated_or_deleted(pos):
    card = pos.enrol()["card_number"]
    pos.buy(card, "1000.00")
    entry = LedgerEntry.objects.get()
    with pytest.raises(DatabaseError), transaction.atomic():
        LedgerEntry.objects.filter(pk=entry.pk).update(points=1_000_000)
    with pytest.raises(DatabaseError), transaction.atomic():
        LedgerEntry.objects.filter(pk=entry.pk).delete()
    assert LedgerEntry.objects.get().points == 30


def test_check_ledger_passes_on_a_consistent_ledger(pos, capsys):
    card = pos.enrol()["card_number"]
    receipt = pos.buy(card, "1000.00")
    pos.refund(receipt["external_id"], "400.00")
    call_command("check_ledger")
    assert "consistent" in capsys.readouterr().out


def test_check_ledger_names_a_drifting_member_and_exits_non_zero(pos, capsys):
    good = pos.enrol()["card_number"]
    bad = pos.enrol()["card_number"]
    pos.buy(good, "1000.00")
    pos.buy(bad, "1000.00")
    Member.objects.filter(card_number=bad).update(points_balance=31)
    with pytest.raises(SystemExit) as exit_info:
        call_command("check_ledger")
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert bad in err
    assert good not in err


def test_a_spend_the_lots_cannot_cover_is_refused_and_changes_nothing(pos):
    # The balance a purchase checks may come from the member's cached sum; if that sum ever
    # drifted above the lots, taking the points must fail rather than record points never taken.
    card = pos.enrol()["card_number"]
    pos.buy(card, "1000.00")  # 30 points in one lot
    member = Member.objects.get(card_number=card)
    with pytest.raises(LoyaltyError) as refused, transaction.atomic():
        ledger.debit(member, points=50, kind=EntryKind.REDEEM, now=timezone.now(), available=100)
    assert refused.value.code == "insufficient_points"
    assert PointsLot.objects.get(member=member).remaining == 30
    assert not LedgerEntry.objects.filter(member=member, kind=EntryKind.REDEEM).exists()
