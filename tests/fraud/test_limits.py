"""The per-role adjustment limits are program settings (issue 20, item 4)."""

import pytest
from django.urls import reverse

from loyalty.engine.adjustments import adjust_points
from loyalty.engine.errors import LoyaltyError
from loyalty.models import AuditLog, LedgerEntry, ProgramSettings


def test_the_limits_default_to_the_old_fixed_values(db):
    program = ProgramSettings.load()
    limits = (
        program.adjust_limit_store_manager,
        program.adjust_limit_support,
        program.adjust_limit_marketer,
    )
    assert limits == (500, 2000, 0)


def test_a_lower_store_manager_limit_refuses_and_writes_nothing(manager, make_member):
    member = make_member("MSK-01")
    ProgramSettings.objects.filter(id=1).update(adjust_limit_store_manager=100)
    ProgramSettings.load().save()  # clears this process's copy of the rules
    with pytest.raises(LoyaltyError) as refused:
        adjust_points(member_id=member.pk, points=101, reason="goodwill", staff=manager)
    assert refused.value.code == "adjustment_limit_exceeded"
    assert LedgerEntry.objects.count() == 0
    assert AuditLog.objects.filter(action="points.adjust").count() == 0
    adjust_points(member_id=member.pk, points=100, reason="goodwill", staff=manager)
    member.refresh_from_db()
    assert member.points_balance == 100


def test_a_raised_support_limit_allows_more(support, make_member):
    member = make_member("MSK-01")
    program = ProgramSettings.load()
    program.adjust_limit_support = 3000
    program.save()
    adjust_points(member_id=member.pk, points=3000, reason="сбой", staff=support)
    member.refresh_from_db()
    assert member.points_balance == 3000


def test_the_program_page_edits_the_limits(client_as, admin_user_):
    client = client_as("admin")
    form = client.get(reverse("loyalty:program")).context["form"]
    data = {name: form[name].value() for name in form.fields}
    data.update(adjust_limit_store_manager=700, adjust_limit_support=2500, adjust_limit_marketer=10)
    response = client.post(reverse("loyalty:program"), data)
    assert response.status_code == 302
    program = ProgramSettings.load()
    assert (
        program.adjust_limit_store_manager,
        program.adjust_limit_support,
        program.adjust_limit_marketer,
    ) == (700, 2500, 10)
    assert AuditLog.objects.filter(action="program.edit").count() == 1
