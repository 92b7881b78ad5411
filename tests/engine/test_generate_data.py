"""generate_data: realistic data whose ledger holds together, the same for the same seed."""

from collections import Counter
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import Count, Sum

from loyalty.engine.ledger import ledger_drift
from loyalty.models import LedgerEntry, PointsLot, Purchase
from members.models import Member
from surveys.models import Complaint, SurveyResponse

NOW = "2026-06-30T21:00:00+00:00"


def generate(seed=7):
    out = StringIO()
    call_command("generate_data", members=800, purchases=4000, seed=seed, now=NOW, stdout=out)
    return out.getvalue()


# Generated rows are committed by the generator's own connections on PostgreSQL (COPY).
pytestmark = pytest.mark.django_db(transaction=True)


def test_generated_ledger_passes_check_ledger(stores):
    generate()

    assert list(ledger_drift()) == []
    out = StringIO()
    call_command("check_ledger", stdout=out)
    assert "consistent" in out.getvalue()


def test_generated_data_is_realistic(stores):
    generate()

    generated = Member.objects.exclude(enrolment_channel="demo")
    assert generated.count() == 800
    purchases = Purchase.objects.filter(external_id__startswith="G")
    assert purchases.count() == 4000
    anonymous = purchases.filter(member__isnull=True).count()
    assert 0.15 * 4000 <= anonymous <= 0.25 * 4000  # the default share is 20%
    # Heavy-tailed spend: the top 10% of buyers bring far more than 10% of the revenue.
    spend = sorted(
        (
            row["total"]
            for row in purchases.filter(member__isnull=False)
            .values("member_id")
            .annotate(total=Sum("amount"))
        ),
        reverse=True,
    )
    top = sum(spend[: len(spend) // 10])
    assert top > Decimal("0.25") * sum(spend)
    assert purchases.values("store_id").distinct().count() >= 3
    months = Counter(
        birth.month
        for birth in generated.exclude(birth_date=None).values_list("birth_date", flat=True)
    )
    assert len(months) == 12  # birthdays across the year
    # Lots of every age: some already expired, some still open.
    assert PointsLot.objects.filter(remaining=0).exists()
    assert PointsLot.objects.filter(remaining__gt=0).exists()
    assert LedgerEntry.objects.filter(kind="expire").exists()
    groups = dict(SurveyResponse.objects.values_list("group").annotate(n=Count("id")))
    assert set(groups) == {"promoter", "passive", "detractor"}
    assert Complaint.objects.filter(source="survey").count() == groups["detractor"]
    assert Complaint.objects.filter(source="phone").exists()
