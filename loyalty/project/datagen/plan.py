"""What to generate: the plan, the program and stores it runs against, and when people buy.

``Plan`` is the request (sizes, seed, the moment the data ends at); ``base_data`` reads the
program's settings and tiers into integer form (cents, rates × 10,000) and makes the stores the
data is spread over; ``TimeSampler`` draws purchase moments from the seasonal distribution.
"""

import bisect
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

DAY = 86400
HOUR = 3600
EXPIRE_JOB_SECONDS = 5 * 60  # the nightly expire_points run starts at 00:05 UTC
ONLINE_PENDING_DAYS = 14  # online orders: points wait for the return window

EXTRA_STORES = [
    # code, name, city, zone, kind
    ("EKB-01", "Екатеринбург, Вайнера", "Екатеринбург", "Asia/Yekaterinburg", "store"),
    ("KZN-01", "Казань, Баумана", "Казань", "Europe/Moscow", "store"),
    ("NSK-01", "Новосибирск, Красный проспект", "Новосибирск", "Asia/Novosibirsk", "store"),
    ("WEB-01", "Интернет-магазин", "", "Europe/Moscow", "store"),
]
WEB_STORE = "WEB-01"

# Monday..Sunday
WEEKDAY_WEIGHT = [0.85, 0.85, 0.9, 0.95, 1.15, 1.3, 1.1]
# Local hour of the day (stores open 8-23; the web shop sells around the clock)
HOUR_WEIGHT = [
    0.05, 0.03, 0.02, 0.02, 0.02, 0.03, 0.08, 0.3, 0.6, 0.8, 0.9, 1.0,
    1.3, 1.4, 1.1, 1.0, 1.1, 1.4, 1.7, 1.8, 1.5, 1.0, 0.5, 0.2,
]  # fmt: skip


def _yearly_weight(day):
    """December peak, 8 March and 23 February gifts, a summer dip."""
    doy = day.timetuple().tm_yday
    weight = 1 + 0.2 * math.cos(2 * math.pi * (doy - 355) / 365.25)
    if day.month == 12 and day.day >= 15:
        weight *= 1.5
    elif day.month == 3 and day.day <= 7:
        weight *= 1.35
    elif day.month == 2 and 18 <= day.day <= 22:
        weight *= 1.15
    elif day.month in (7, 8):
        weight *= 0.9
    return weight


@dataclass
class Plan:
    members: int
    purchases: int
    seed: int = 1
    days: int = 730  # the window of purchases, ending now
    anonymous_share: float = 0.2
    inactive_share: float = 0.1  # members who enrolled and never bought in the window
    now: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class TierInfo:
    id: int
    threshold_c: int  # cents
    rate_e4: int  # earn rate × 10,000 (0.0300 → 300)
    discount_bp: int  # discount percent × 100


@dataclass
class Program:
    point_value_c: int
    share_pm: int  # max redeem share × 1,000
    expiry_days: int
    pending_days: int
    tier_window_days: int
    grace_days: int
    birthday_points: int
    birthday_expiry_days: int
    tiers: list  # TierInfo, by threshold


class Lot:
    __slots__ = (
        "id", "points", "remaining", "available_from", "expires_at", "purchase_id", "created_at"
    )  # fmt: skip

    def __init__(self, lot_id, points, available_from, expires_at, purchase_id, created_at):
        self.id = lot_id
        self.points = points
        self.remaining = points
        self.available_from = available_from
        self.expires_at = expires_at
        self.purchase_id = purchase_id
        self.created_at = created_at


class TimeSampler:
    """Draws purchase times from the seasonal distribution over the window, hour by hour."""

    def __init__(self, start, hours, rng):
        self.start = start
        self.rng = rng
        cumulative = []
        total = 0.0
        for hour in range(hours):
            moment = datetime.fromtimestamp(start + hour * HOUR, UTC)
            local = moment + timedelta(hours=3)  # Moscow
            growth = math.exp(0.18 * hour / (365 * 24))
            total += (
                WEEKDAY_WEIGHT[local.weekday()]
                * HOUR_WEIGHT[local.hour]
                * _yearly_weight(local.date())
                * growth
            )
            cumulative.append(total)
        self.cumulative = cumulative
        self.total = total

    def fraction_before(self, moment):
        hour = int((moment - self.start) // HOUR)
        if hour <= 0:
            return 0.0
        if hour >= len(self.cumulative):
            return 1.0
        return self.cumulative[hour - 1] / self.total

    def draw(self, low=0.0):
        """A time (epoch seconds) whose cumulative share is at least ``low``."""
        target = (low + (1 - low) * self.rng.random()) * self.total
        hour = bisect.bisect_left(self.cumulative, target)
        hour = min(hour, len(self.cumulative) - 1)
        return self.start + hour * HOUR + int(self.rng.random() * HOUR)


def base_data():
    """The default program and the stores the data is spread over (made if missing)."""
    from loyalty.defaults import install_default_program
    from loyalty.models import ProgramSettings, Store, Tier

    install_default_program(ProgramSettings, Tier)
    demo = [
        ("MSK-01", "Москва, Тверская", "Москва", "Europe/Moscow", "store"),
        ("MSK-02", "Москва, Арбат", "Москва", "Europe/Moscow", "store"),
        ("SPB-01", "Санкт-Петербург, Невский", "Санкт-Петербург", "Europe/Moscow", "store"),
        ("PARTNER-01", "Кофейня-партнёр", "Москва", "Europe/Moscow", "partner"),
    ]
    for code, name, city, zone, kind in demo + EXTRA_STORES:
        Store.objects.get_or_create(
            code=code, defaults={"name": name, "city": city, "time_zone": zone, "kind": kind}
        )
    settings = ProgramSettings.load()
    tiers = [
        TierInfo(
            id=tier.pk,
            threshold_c=int(tier.threshold * 100),
            rate_e4=int(tier.earn_rate * 10000),
            discount_bp=int(tier.discount_percent * 100),
        )
        for tier in Tier.objects.order_by("threshold")
    ]
    program = Program(
        point_value_c=int(settings.point_value * 100),
        share_pm=int(settings.max_redeem_share * 1000),
        expiry_days=settings.expiry_days,
        pending_days=settings.pending_days,
        tier_window_days=settings.tier_window_days,
        grace_days=settings.downgrade_grace_days,
        birthday_points=settings.birthday_points,
        birthday_expiry_days=settings.birthday_points_expiry_days,
        tiers=tiers,
    )
    # Busiest stores first: the Moscow flagships, then the web shop, then the rest.
    order = ["MSK-01", WEB_STORE, "MSK-02", "SPB-01", "EKB-01", "KZN-01", "NSK-01", "PARTNER-01"]
    stores = sorted(
        Store.objects.filter(is_active=True).values_list("pk", "code"),
        key=lambda row: (order.index(row[1]) if row[1] in order else len(order), row[1]),
    )
    return program, stores
