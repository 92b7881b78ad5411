"""A member with something of every kind on record: what the personal-data tests export and
erase. Every row comes from the services, as a member's history would."""

from datetime import timedelta
from decimal import Decimal as D

from django.utils import timezone

from loyalty.engine.adjustments import adjust_points
from loyalty.engine.outbox import enqueue
from loyalty.engine.pricing import Line
from loyalty.engine.refunds import refund_purchase
from messaging.models import Message, Purpose
from surveys.models import ComplaintCategory, Survey
from surveys.services import add_complaint_note, answer_survey, create_invitation, open_complaint
from tests.factories import MemberFactory, PurchaseFactory


def member_with_a_story(stores, staff, *, receipts=1, prefix="S"):
    """A member with consent, ``receipts`` purchases with two lines each (the first refunded
    in part), an adjustment, a message sent and one waiting, an NPS answer with a comment and a
    complaint with a note."""
    now = timezone.now()
    member = MemberFactory(
        first_name="Анна",
        last_name="Смирнова",
        email="anna@example.com",
        birth_date=now.date().replace(year=1990),
        marketing_consent=True,
        consent_text="Я согласна получать предложения.",
        external_ref=f"{prefix}-CRM-1",
        now=now - timedelta(days=30),
    )
    store = stores["MSK-01"]
    for index in range(receipts):
        PurchaseFactory(
            member=member,
            store=store,
            external_id=f"{prefix}-{index + 1}",
            amount="1000.00",
            lines=[
                Line(sku="TEA", category="drinks", quantity=D("2"), unit_price=D("250.00")),
                Line(sku="CAKE", category="bakery", quantity=D("1"), unit_price=D("500.00")),
            ],
            occurred_at=now - timedelta(days=20, minutes=index),
        )
    refund_purchase(
        store=store, external_id=f"{prefix}-1", refund_id=f"{prefix}-R1", amount="250.00"
    )
    adjust_points(member_id=member.pk, points=50, reason="Извинения за очередь", staff=staff)
    Message.objects.create(
        member=member,
        purpose=Purpose.BIRTHDAY_OFFER,
        channel="email",
        address="anna@example.com",
        subject="С днём рождения, Анна!",
        body="Анна, дарим вам 200 баллов.",
        status=Message.Status.SENT,
        created_at=now - timedelta(days=10),
        sent_at=now - timedelta(days=10),
    )
    enqueue(member_id=member.pk, purpose=Purpose.CAMPAIGN, key=f"story:{member.pk}", now=now)
    _invitation, token = create_invitation(
        survey=Survey.objects.get(code="nps"), member=member, now=now - timedelta(days=5)
    )
    answer_survey(
        token=token, score=9, comment="Анна: всё понравилось", now=now - timedelta(days=4)
    )
    case = open_complaint(
        member=member,
        category=ComplaintCategory.objects.order_by("id").first(),
        subject="Анна Смирнова: не начислили баллы",
        description="Звонила с номера клиентки, просила перезвонить.",
        source="phone",
        store=store,
        staff=staff,
    )
    add_complaint_note(complaint_id=case.pk, staff=staff, text="Перезвонить Анне после 18:00")
    member.refresh_from_db()
    return member
