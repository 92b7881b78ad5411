"""Load the demo program, stores, staff and members (safe to run again)."""

import random
from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from loyalty import roles
from loyalty.defaults import install_default_program
from loyalty.engine.adjustments import adjust_points
from loyalty.engine.ledger import balance_of
from loyalty.engine.money import money
from loyalty.engine.pricing import Line, lines_total
from loyalty.engine.purchases import record_purchase
from loyalty.engine.refunds import refund_purchase
from loyalty.jobs.runner import run_job
from loyalty.models import JobRun, ProgramSettings, Purchase, Store, Tier, User
from loyalty.project.datagen.names import FIRST_NAMES_F, FIRST_NAMES_M, LAST_NAMES
from members.models import Member
from members.services import enrol_member, set_member_blocked

DEMO_MEMBERS = 300
# The same names as the data generator's, so demo and generated members look alike.
FIRST_NAMES = FIRST_NAMES_F + FIRST_NAMES_M
PRODUCTS = [
    ("COFFEE-250", "coffee", "450.00"),
    ("TEA-100", "tea", "320.00"),
    ("CAKE", "bakery", "290.00"),
    ("MUG", "goods", "890.00"),
    ("BEANS-1KG", "coffee", "1850.00"),
    ("GIFT-CARD", "gift_cards", "3000.00"),
]

DEMO_PASSWORD = "demo"  # noqa: S105  (demo accounts only, printed at start)

STORES = [
    ("MSK-01", "Москва, Тверская", "Москва", "Europe/Moscow", Store.Kind.STORE),
    ("MSK-02", "Москва, Арбат", "Москва", "Europe/Moscow", Store.Kind.STORE),
    ("SPB-01", "Санкт-Петербург, Невский", "Санкт-Петербург", "Europe/Moscow", Store.Kind.STORE),
    ("PARTNER-01", "Кофейня-партнёр", "Москва", "Europe/Moscow", Store.Kind.PARTNER),
]

# (username, role, stores managed)
DEMO_USERS = [
    ("admin", roles.ADMINISTRATOR, []),
    ("manager", roles.STORE_MANAGER, ["MSK-01"]),
    ("support", roles.SUPPORT, []),
    ("marketer", roles.MARKETER, []),
]


def seed_stores():
    for code, name, city, zone, kind in STORES:
        Store.objects.update_or_create(
            code=code, defaults={"name": name, "city": city, "time_zone": zone, "kind": kind}
        )


# Staff of a Russian merchant have Russian names (the demo used to call them "Admin", ...).
DEMO_STAFF_NAMES = {
    "admin": ("Ирина", "Соколова"),
    "manager": ("Дмитрий", "Орлов"),
    "support": ("Анна", "Белова"),
    "marketer": ("Павел", "Зайцев"),
}


def seed_staff():
    for username, role, store_codes in DEMO_USERS:
        first_name, last_name = DEMO_STAFF_NAMES[username]
        user, created = User.objects.get_or_create(
            username=username,
            defaults={
                "first_name": first_name,
                "last_name": last_name,
                "email": f"{username}@example.com",
                "is_staff": role == roles.ADMINISTRATOR,
                "is_superuser": role == roles.ADMINISTRATOR,
            },
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        elif user.first_name == username.capitalize() and not user.last_name:
            user.first_name, user.last_name = first_name, last_name
            user.save(update_fields=["first_name", "last_name"])
        user.groups.set([Group.objects.get(name=role)])
        user.stores.set(Store.objects.filter(code__in=store_codes))


def surname(last, first):
    """Russian surnames agree with the first name's gender."""
    return last + "а" if first[-1] in "ая" else last


def seed_members(count, rng):
    """A few hundred members with a year of purchases, made through the real services."""
    if Member.objects.filter(external_ref__startswith="demo-").exists():
        return 0
    stores = list(Store.objects.filter(kind=Store.Kind.STORE).order_by("code"))
    support = User.objects.get(username="support")
    now = timezone.now()
    year_ago = now - timedelta(days=365)
    receipt = 0
    for index in range(count):
        first = rng.choice(FIRST_NAMES)
        last = surname(rng.choice(LAST_NAMES), first)
        enrolled_at = year_ago + timedelta(days=rng.randint(0, 300), hours=rng.randint(9, 20))
        store = rng.choice(stores)
        member = enrol_member(
            phone=f"+7916{index:07d}",
            email=f"member{index}@example.com" if rng.random() < 0.8 else "",
            first_name=first,
            last_name=last,
            birth_date=(now - timedelta(days=rng.randint(18 * 365, 70 * 365))).date(),
            marketing_consent=rng.random() < 0.7,
            consent_text="Согласие на получение предложений программы лояльности.",
            external_ref=f"demo-{index}",
            store=store,
            enrolled_at=enrolled_at,
            now=enrolled_at,
        )
        when = enrolled_at
        visits = int(rng.paretovariate(1.3)) + rng.randint(0, 6)
        for _visit in range(visits):
            when += timedelta(days=rng.randint(3, 60), hours=rng.randint(0, 8))
            if when >= now:
                break
            lines = []
            for _item in range(rng.randint(1, 4)):
                sku, category, price = rng.choice(PRODUCTS)
                lines.append(
                    Line(
                        sku=sku,
                        category=category,
                        quantity=Decimal(rng.randint(1, 3)),
                        unit_price=Decimal(price),
                    )
                )
            amount = lines_total(lines)
            balance = balance_of(Member.objects.get(pk=member.pk), when).available
            redeem = 0
            if balance > 100 and rng.random() < 0.3:
                redeem = min(balance, int(amount / 2))
            receipt += 1
            external_id = f"DEMO-{receipt:06d}"
            shop = store if rng.random() < 0.8 else rng.choice(stores)
            record_purchase(
                store=shop,
                external_id=external_id,
                card_number=member.card_number,
                amount=amount,
                occurred_at=when,
                lines=lines,
                redeem_points=redeem,
                now=when,
            )
            if rng.random() < 0.04:
                refund_purchase(
                    store=shop,
                    external_id=external_id,
                    refund_id=f"DEMO-R{receipt}",
                    amount=money(amount / 2, rounding=ROUND_HALF_EVEN),
                    now=when + timedelta(days=2),
                )
        if rng.random() < 0.03:
            adjust_points(
                member_id=member.pk,
                points=rng.choice([50, 100, 200]),
                reason="Компенсация за задержку заказа",
                staff=support,
                now=min(now, when + timedelta(days=1)),
            )
    for _anonymous in range(count):
        receipt += 1
        record_purchase(
            store=rng.choice(stores),
            external_id=f"DEMO-{receipt:06d}",
            amount=Decimal(rng.randint(100, 5000)),
            occurred_at=year_ago + timedelta(days=rng.randint(0, 364)),
        )
    blocked = Member.objects.filter(external_ref="demo-7").first()
    if blocked:
        set_member_blocked(
            member_id=blocked.pk, blocked=True, reason="Карта утеряна", staff=support
        )
    return count


COMMENTS = {
    "promoter": ["Отличный кофе и быстрое обслуживание", "Всегда вежливые бариста", ""],
    "passive": ["Неплохо, но дороговато", "Иногда долго ждать", ""],
    "detractor": ["Долго ждал на кассе", "Не начислили баллы за покупку", "Грязно в зале"],
}


def seed_feedback(rng):
    """NPS answers over the year, the complaints detractors opened, and some resolved."""
    from surveys.defaults import install_default_surveys
    from surveys.models import Complaint, ComplaintCategory, Survey, SurveyResponse
    from surveys.services import answer_survey, create_invitation, resolve_complaint

    install_default_surveys(Survey, ComplaintCategory)
    if SurveyResponse.objects.exists():
        return
    nps = Survey.objects.get(code="nps")
    support = User.objects.get(username="support")
    purchases = (
        Purchase.objects.filter(member__marketing_consent=True, member__status="active")
        .select_related("member")
        .order_by("id")
    )
    for purchase in purchases:
        if rng.random() > 0.25:
            continue
        asked = purchase.occurred_at + timedelta(days=3)
        if asked > timezone.now():
            continue
        invitation, token = create_invitation(
            survey=nps, member=purchase.member, now=asked, purchase=purchase
        )
        draw = rng.random()
        score = (
            rng.choice([9, 10])
            if draw < 0.55
            else rng.choice([7, 8])
            if draw < 0.8
            else (rng.randint(0, 6))
        )
        group = "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"
        answer_survey(
            token=token,
            score=score,
            comment=rng.choice(COMMENTS[group]),
            now=asked + timedelta(hours=rng.randint(1, 40)),
        )
    for index, case in enumerate(Complaint.objects.order_by("id")):
        if index % 3 == 2:
            continue  # some cases stay open for the queue
        resolve_complaint(
            complaint_id=case.pk,
            staff=support,
            resolution="Извинились и начислили баллы",
            points=rng.choice([0, 100, 200]),
            now=case.created_at + timedelta(hours=rng.randint(2, 30)),
        )


class Command(BaseCommand):
    help = "Create the demo program, stores, staff users and members. Safe to run again."

    def add_arguments(self, parser):
        parser.add_argument("--members", type=int, default=DEMO_MEMBERS)
        parser.add_argument("--seed", type=int, default=2026)

    def handle(self, *args, members, seed, **options):
        with transaction.atomic():
            install_default_program(ProgramSettings, Tier)
            seed_stores()
            seed_staff()
        rng = random.Random(seed)
        created = seed_members(members, rng)
        seed_feedback(rng)
        # The analytics dashboard reads figures the nightly job builds: build them now.
        run_job("refresh_analytics", trigger=JobRun.Trigger.COMMAND)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data ready ({created} new members)."
                if created
                else "Demo data ready (already loaded)."
            )
        )
