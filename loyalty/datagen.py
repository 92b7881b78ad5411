"""Realistic program data at scale, for benchmarks and demos (issue 9).

One deterministic simulation (``random.Random(seed)``) walks each member's life in time order
with the engine's own arithmetic (integer cents, points rounded down): purchases earn at the
tier of the moment, some spend points soonest-expiry first (with lot allocations), birthday
bonuses come and go, lots expire at the next nightly run. Rows go out through a sink: COPY on
PostgreSQL (one connection per table, indexes rebuilt afterwards), batched ``executemany`` on
SQLite. Every member's cached balance equals the sum of its entries and of its lots' remaining
points, so ``check_ledger`` passes.

What the data looks like:
- spend per receipt is log-normal with a heavy tail, members' visit rates are Pareto (a few
  members buy very often), a share of receipts is anonymous;
- weekly (Friday-Sunday peak), yearly (December peak, 8 March, summer dip) and daily (lunch and
  evening) seasonality, and 20% growth per year;
- several stores with Zipf-like weights; each member mostly buys in a home store; the web shop's
  receipts are online or app orders whose points stay pending for a 14-day return window;
- birthdays across the year (29 February included, from leap years), lots of every age: expired
  and written off by the nightly job, expired in the last day and not yet written off (the backlog
  of one nightly run), expiring soon, pending.
"""

import bisect
import math
import random
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from loyalty.engine import cards
from loyalty.engine.money import from_cents

DAY = 86400
HOUR = 3600
EXPIRE_JOB_SECONDS = 5 * 60  # the nightly expire_points run starts at 00:05 UTC
ONLINE_PENDING_DAYS = 14  # online orders: points wait for the return window
BIRTHDAY_POINTS_DAYS = 30

EXTRA_STORES = [
    # code, name, city, zone, kind
    ("EKB-01", "Екатеринбург, Вайнера", "Екатеринбург", "Asia/Yekaterinburg", "store"),
    ("KZN-01", "Казань, Баумана", "Казань", "Europe/Moscow", "store"),
    ("NSK-01", "Новосибирск, Красный проспект", "Новосибирск", "Asia/Novosibirsk", "store"),
    ("WEB-01", "Интернет-магазин", "", "Europe/Moscow", "store"),
]
WEB_STORE = "WEB-01"

FIRST_NAMES_F = [
    "Анна",
    "Мария",
    "Елена",
    "Ольга",
    "Наталья",
    "Ирина",
    "Татьяна",
    "Светлана",
    "Юлия",
    "Екатерина",
    "Дарья",
    "Алина",
    "Ксения",
    "Виктория",
    "Полина",
    "Софья",
    "Вера",
    "Людмила",
    "Галина",
    "Марина",
]
FIRST_NAMES_M = [
    "Алексей",
    "Дмитрий",
    "Сергей",
    "Андрей",
    "Иван",
    "Михаил",
    "Павел",
    "Николай",
    "Артём",
    "Максим",
    "Егор",
    "Владимир",
    "Игорь",
    "Олег",
    "Роман",
    "Кирилл",
    "Денис",
    "Евгений",
    "Антон",
    "Юрий",
]
LAST_NAMES = [
    "Иванов",
    "Смирнов",
    "Кузнецов",
    "Попов",
    "Васильев",
    "Петров",
    "Соколов",
    "Михайлов",
    "Новиков",
    "Фёдоров",
    "Морозов",
    "Волков",
    "Алексеев",
    "Лебедев",
    "Семёнов",
    "Егоров",
    "Павлов",
    "Козлов",
    "Степанов",
    "Николаев",
    "Орлов",
    "Андреев",
    "Макаров",
    "Никитин",
    "Захаров",
    "Зайцев",
    "Соловьёв",
    "Борисов",
    "Яковлев",
    "Григорьев",
    "Романов",
    "Воробьёв",
]
TRANSLIT = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
        [
            "a",
            "b",
            "v",
            "g",
            "d",
            "e",
            "e",
            "zh",
            "z",
            "i",
            "y",
            "k",
            "l",
            "m",
            "n",
            "o",
            "p",
            "r",
            "s",
            "t",
            "u",
            "f",
            "kh",
            "ts",
            "ch",
            "sh",
            "sch",
            "",
            "y",
            "",
            "e",
            "yu",
            "ya",
        ],
        strict=True,
    )
)
EMAIL_DOMAINS = ["mail.ru", "yandex.ru", "gmail.com", "bk.ru", "inbox.ru", "example.com"]

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


class Generator:
    """Simulates members and purchases and hands each row to ``sink.<table>(row)``."""

    def __init__(self, plan, *, program, stores, ids, taken, sink):
        self.plan = plan
        self.program = program
        self.sink = sink
        self.rng = random.Random(plan.seed)
        self.now = int(plan.now.timestamp())
        self.start = self.now - plan.days * DAY
        self.times = TimeSampler(self.start, plan.days * 24, self.rng)
        self.stores = stores  # [(id, code)]
        self.store_weights = list(
            _cumulate([1.0 / (rank + 1) ** 0.8 for rank in range(len(stores))])
        )
        self.web_store = next((sid for sid, code in stores if code == WEB_STORE), None)
        self.ids = dict(ids)  # next id per table
        self.taken = taken  # existing card numbers, phones, referral codes
        self.stats = {
            "members": 0,
            "purchases": 0,
            "anonymous": 0,
            "lots": 0,
            "entries": 0,
            "allocations": 0,
            "expired_lots": 0,
            "backlog_lots": 0,
            "pending_lots": 0,
            "feb29_birthdays": 0,
        }
        self.member_id_range = (self.ids["member"], self.ids["member"])
        self.purchase_id_range = (self.ids["purchase"], self.ids["purchase"])

    # ---- identity of a member --------------------------------------------------------------
    def _next(self, table):
        value = self.ids[table]
        self.ids[table] = value + 1
        return value

    def _card(self, index, salt=0):
        body = "2" + f"{(index * 7_919_243 + 10_007 + salt * 104_729) % 10**11:011d}"
        return cards.card_from_body(body)

    def _phone(self, index, salt=0):
        return "+79" + f"{500_000_000 + (index * 48_271 + 1 + salt * 7) % 500_000_000:09d}"

    def _referral(self, index, salt=0):
        return cards.referral_from_int(index * 1_234_567_891 + 987_654_321 + salt * 13)

    def _unique(self, make, index, taken):
        salt = 0
        value = make(index)
        while value in taken:
            salt += 1
            value = make(index, salt)
        return value

    def _ts(self, seconds):
        return self.sink.ts(seconds)

    # ---- the run ---------------------------------------------------------------------------
    def run(self, progress=None):
        plan = self.plan
        rng = self.rng
        activity = []
        for _index in range(plan.members):
            if rng.random() < plan.inactive_share:
                activity.append(0.0)
            else:
                activity.append(min(rng.paretovariate(1.2), 200.0))
        member_purchases = round(plan.purchases * (1 - plan.anonymous_share))
        scale = member_purchases / max(sum(activity), 1e-9)
        first_member = self.ids["member"]
        self.member_id_range = (first_member, first_member + plan.members)
        made = 0
        for index, weight in enumerate(activity):
            wanted = weight * scale
            count = int(wanted) + (1 if rng.random() < wanted - int(wanted) else 0)
            count = min(count, plan.purchases - made)
            made += self._member(self._next("member"), count)
            if progress and index % 50_000 == 49_999:
                progress(f"{index + 1:,} members, {made:,} purchases")
        self.member_id_range = (first_member, self.ids["member"])
        self._anonymous(plan.purchases - made)
        self.purchase_id_range = (self.purchase_id_range[0], self.ids["purchase"])
        return self.stats

    def _anonymous(self, count):
        for _index in range(count):
            store_id, channel = self._store(None)
            amount = self._amount(1.0)
            self._purchase_row(
                self._next("purchase"), store_id, None, self.times.draw(), channel,
                amount, 0, 0, amount, 0, None,
            )  # fmt: skip
            self.stats["anonymous"] += 1

    def _store(self, home):
        rng = self.rng
        if home is not None and rng.random() < 0.8:
            store_id = home
        else:
            pick = bisect.bisect_left(self.store_weights, rng.random() * self.store_weights[-1])
            store_id = self.stores[min(pick, len(self.stores) - 1)][0]
        if store_id == self.web_store:
            return store_id, "online" if rng.random() < 0.6 else "app"
        return store_id, "store"

    def _amount(self, factor):
        """Receipt amount in cents: log-normal around 900 RUB, heavy right tail."""
        value = self.rng.lognormvariate(6.8, 0.85) * factor
        return max(1000, min(int(value * 100), 50_000_000))

    def _tier_for(self, value_c):
        best = self.program.tiers[0]
        for tier in self.program.tiers:
            if tier.threshold_c <= value_c:
                best = tier
        return best

    def _member(self, member_id, count):
        """Simulate one member's life in time order and write all of its rows."""
        rng = self.rng
        program = self.program
        now = self.now
        index = member_id
        female = rng.random() < 0.55
        first = rng.choice(FIRST_NAMES_F if female else FIRST_NAMES_M)
        last = rng.choice(LAST_NAMES) + ("а" if female else "")
        card = self._unique(self._card, index, self.taken["card"])
        phone = self._unique(self._phone, index, self.taken["phone"])
        referral = self._unique(self._referral, index, self.taken["referral"])
        email = ""
        if rng.random() < 0.7:
            latin = "".join(TRANSLIT.get(ch, ch) for ch in (first[0] + last).lower())
            email = f"{latin}{member_id}@{rng.choice(EMAIL_DOMAINS)}"
        birth = None
        if rng.random() < 0.9:
            year = rng.randint(1950, 2007)
            leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
            birth = date(year, 1, 1) + timedelta(days=rng.randrange(366 if leap else 365))
            if birth.month == 2 and birth.day == 29:
                self.stats["feb29_birthdays"] += 1
        consent = rng.random() < 0.65
        home, _channel = self._store(None)
        spend_factor = rng.lognormvariate(0, 0.5)
        redeem_habit = rng.choice((0.0, 0.0, 0.1, 0.3, 0.6))

        times = []
        if count:
            # Enrolled before the first purchase in the window, or long before it.
            low = rng.random() ** 2 * 0.9 if rng.random() < 0.6 else 0.0
            times = sorted(self.times.draw(low) for _purchase in range(count))
            enrolled = times[0] - rng.randrange(0, 60 * DAY) - HOUR
            if rng.random() < 0.5:
                enrolled = min(enrolled, self.start - rng.randrange(0, 3 * 365 * DAY))
        else:
            enrolled = self.now - rng.randrange(0, (self.plan.days + 3 * 365) * DAY)
        events = [(moment, 0) for moment in times]
        if birth is not None and consent:
            for year in range(datetime.fromtimestamp(max(enrolled, self.start), UTC).year, 9999):
                try:
                    birthday = date(year, birth.month, birth.day)
                except ValueError:  # 29 February: the 28th in other years
                    birthday = date(year, 2, 28)
                moment = int(
                    datetime(year, birthday.month, birthday.day, 6, tzinfo=UTC).timestamp()
                )
                if moment > now:
                    break
                if moment > enrolled and moment >= self.start:
                    events.append((moment, 1))
        events.sort()

        tier = program.tiers[0]
        tier_since = enrolled
        below_since = None
        window = deque()
        window_sum = 0
        window_seconds = program.tier_window_days * DAY
        grace_seconds = program.grace_days * DAY
        lots = []  # lots that may still have points, in creation order
        all_lots = []  # every lot, written once the member's story is told
        purchases = []
        entries = []
        allocations = []
        ts = self._ts

        for moment, kind in events:
            while window and window[0][0] <= moment - window_seconds:
                window_sum -= window.popleft()[1]
            if kind == 1:
                lot = Lot(
                    self._next("lot"),
                    program.birthday_points,
                    moment,
                    moment + program.birthday_expiry_days * DAY,
                    None,
                    moment,
                )
                lots.append(lot)
                all_lots.append(lot)
                entries.append(("bonus", "bonus", lot.points, None, lot, "birthday_offers", moment))
                continue
            # Nightly downgrade after the grace period below the tier's threshold.
            if window_sum < tier.threshold_c:
                if below_since is None:
                    below_since = moment
                elif moment - below_since > grace_seconds:
                    tier = self._tier_for(window_sum)
                    tier_since = moment
                    below_since = None
            else:
                below_since = None
            store_id, channel = self._store(home)
            amount = self._amount(spend_factor)
            discount = (amount * tier.discount_bp + 5000) // 10000
            after = amount - discount
            cap = (program.share_pm * after) // (1000 * program.point_value_c)
            redeem = 0
            open_lots = None
            if redeem_habit and rng.random() < redeem_habit:
                open_lots = [
                    lot
                    for lot in lots
                    if lot.remaining and lot.available_from <= moment < lot.expires_at
                ]
                available = sum(lot.remaining for lot in open_lots)
                if available >= 100:
                    redeem = min(available, cap)
                    if rng.random() < 0.3:
                        redeem = rng.randint(1, redeem) if redeem else 0
            paid = after - redeem * program.point_value_c
            earn = (paid * tier.rate_e4) // 1_000_000
            purchase_id = self._next("purchase")
            purchases.append(
                (purchase_id, store_id, moment, channel, amount, discount, redeem, paid, earn, tier)
            )
            if redeem:
                open_lots.sort(key=lambda lot: (lot.expires_at, lot.id))
                left = redeem
                for lot in open_lots:
                    take = min(lot.remaining, left)
                    lot.remaining -= take
                    left -= take
                    allocations.append((purchase_id, lot.id, take))
                    if not left:
                        break
                entries.append(("redeem", "redeemed", -redeem, purchase_id, None, "", moment))
            if earn:
                available_from = moment + program.pending_days * DAY
                if channel != "store":
                    available_from += ONLINE_PENDING_DAYS * DAY
                lot = Lot(
                    self._next("lot"),
                    earn,
                    available_from,
                    available_from + program.expiry_days * DAY,
                    purchase_id,
                    moment,
                )
                lots.append(lot)
                all_lots.append(lot)
                entries.append(("earn", "issued", earn, purchase_id, lot, "", moment))
            window.append((moment, paid))
            window_sum += paid
            best = self._tier_for(window_sum)
            if best.threshold_c > tier.threshold_c:
                tier = best
                tier_since = moment
                below_since = None
            # Keep the open list short: lots spent to zero are never looked at again.
            if len(lots) > 64:
                lots = [lot for lot in lots if lot.remaining]

        # As of now: the nightly job has written off every lot that expired before its last
        # run (00:05 UTC); lots that expired since are the backlog of the next run.
        while window and window[0][0] <= now - window_seconds:
            window_sum -= window.popleft()[1]
        if window_sum < tier.threshold_c and below_since is None:
            below_since = now
        balance = 0
        stats = self.stats
        for lot in all_lots:
            if lot.remaining and lot.expires_at <= now:
                run = (lot.expires_at // DAY) * DAY + EXPIRE_JOB_SECONDS
                if run < lot.expires_at:
                    run += DAY
                if run <= now:
                    entries.append(
                        ("expire", "expired", -lot.remaining, None, lot, "expire_points", run)
                    )
                    lot.remaining = 0
                    stats["expired_lots"] += 1
                else:
                    stats["backlog_lots"] += 1
            if lot.available_from > now:
                stats["pending_lots"] += 1
            balance += lot.remaining

        sink = self.sink
        referred_by = None
        first_member = self.member_id_range[0]
        if member_id > first_member and rng.random() < 0.03:
            referred_by = rng.randrange(first_member, member_id)
        search_text = " ".join(
            part for part in (first, last, email, phone.lstrip("+"), card) if part
        ).lower()
        status = "blocked" if rng.random() < 0.003 else "active"
        enrolled_ts = ts(enrolled)
        sink.member(
            (
                member_id, card, phone, email, first, last,
                birth.isoformat() if birth else None,
                "ru" if rng.random() < 0.93 else "en",
                consent, enrolled_ts if consent else None, "store" if consent else "", "",
                status, tier.id, ts(tier_since), ts(below_since) if below_since else None,
                balance, 0, enrolled_ts, home, "store", None, referral, referred_by, None, None,
                search_text,
            )
        )  # fmt: skip
        for (
            purchase_id,
            store_id,
            moment,
            channel,
            amount,
            discount,
            redeem,
            paid,
            earn,
            tier_then,
        ) in purchases:
            self._purchase_row(
                purchase_id, store_id, member_id, moment, channel, amount, discount, redeem,
                paid, earn, tier_then.id,
            )  # fmt: skip
        for lot in all_lots:
            sink.lot(
                (
                    lot.id, member_id, lot.points, lot.remaining, ts(lot.available_from),
                    ts(lot.expires_at), lot.purchase_id, ts(lot.created_at),
                )
            )  # fmt: skip
        for kind, account, points, purchase_id, lot, job, moment in entries:
            sink.entry(
                (
                    self._next("entry"), member_id, kind, account, points, purchase_id, None,
                    lot.id if lot else None, None, "", job, "",
                    ts(lot.expires_at) if lot and kind != "expire" else None, ts(moment),
                )
            )  # fmt: skip
        for purchase_id, lot_id, points in allocations:
            sink.allocation((self._next("allocation"), purchase_id, lot_id, points, 0))
        stats["members"] += 1
        stats["lots"] += len(all_lots)
        stats["entries"] += len(entries)
        stats["allocations"] += len(allocations)
        return len(purchases)

    def _purchase_row(
        self, purchase_id, store_id, member_id, moment, channel, amount, discount, redeem, paid,
        earn, tier_id,
    ):  # fmt: skip
        when = self.sink.ts(moment)
        self.sink.purchase(
            (
                purchase_id, store_id, f"G{purchase_id:010d}", member_id, when, channel,
                str(from_cents(amount)), str(from_cents(discount)), redeem,
                str(from_cents(redeem * self.program.point_value_c)), str(from_cents(paid)), earn,
                "", tier_id, "0.00", 0, 0, str(from_cents(paid)), False, "", "", when,
            )
        )  # fmt: skip
        self.stats["purchases"] += 1


def _cumulate(values):
    total = 0.0
    for value in values:
        total += value
        yield total


MEMBER_COLUMNS = (
    "id", "card_number", "phone", "email", "first_name", "last_name", "birth_date", "language",
    "marketing_consent", "consent_at", "consent_source", "consent_text", "status", "tier_id",
    "tier_since", "below_tier_since", "points_balance", "points_debt", "enrolled_at",
    "enrolled_store_id", "enrolment_channel", "external_ref", "referral_code", "referred_by_id",
    "merged_into_id", "enrolled_by_id", "search_text",
)  # fmt: skip
PURCHASE_COLUMNS = (
    "id", "store_id", "external_id", "member_id", "occurred_at", "channel", "amount",
    "discount_amount", "redeemed_points", "redeemed_value", "paid_amount", "earned_points",
    "coupon_code", "tier_id", "refunded_amount", "reversed_points", "returned_points",
    "qualifying_amount", "is_historical", "fingerprint", "response", "created_at",
)  # fmt: skip
LOT_COLUMNS = (
    "id", "member_id", "points", "remaining", "available_from", "expires_at", "purchase_id",
    "created_at",
)  # fmt: skip
ENTRY_COLUMNS = (
    "id", "member_id", "kind", "account", "points", "purchase_id", "refund_id", "lot_id",
    "staff_id", "reason", "job", "batch", "expires_at", "created_at",
)  # fmt: skip
ALLOCATION_COLUMNS = ("id", "purchase_id", "lot_id", "points", "returned")

TABLES = {
    "member": ("members_member", MEMBER_COLUMNS),
    "purchase": ("loyalty_purchase", PURCHASE_COLUMNS),
    "lot": ("loyalty_pointslot", LOT_COLUMNS),
    "entry": ("loyalty_ledgerentry", ENTRY_COLUMNS),
    "allocation": ("loyalty_lotallocation", ALLOCATION_COLUMNS),
}


class _TimeFormat:
    """Epoch seconds as the text each database stores (formatted once per minute)."""

    def __init__(self, suffix):
        self.suffix = suffix
        self.minutes = {}

    def __call__(self, seconds):
        minute, secs = divmod(seconds, 60)
        text = self.minutes.get(minute)
        if text is None:
            moment = datetime(1970, 1, 1) + timedelta(minutes=minute)
            text = self.minutes[minute] = moment.strftime("%Y-%m-%d %H:%M:")
        return f"{text}{secs:02d}{self.suffix}"


class PostgresSink:
    """One COPY per table, each on its own connection, all open at once.

    The loading sessions run with ``session_replication_role = replica``: foreign-key triggers
    stay quiet (rows of one member arrive on five connections in five transactions, so a check
    could not see its parent anyway); the generator writes only ids it made itself.
    """

    def __init__(self, dsn):
        import contextlib

        import psycopg

        self.ts = _TimeFormat("+00")
        self.connections = []
        self.stack = contextlib.ExitStack()
        try:
            for key, (table, columns) in TABLES.items():
                conn = psycopg.connect(dsn)
                self.connections.append(conn)
                conn.execute("SET session_replication_role = replica")
                conn.execute("SET synchronous_commit = off")
                copy = self.stack.enter_context(
                    conn.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN")
                )
                setattr(self, key, copy.write_row)
        except BaseException:
            self.close(failed=True)
            raise

    def close(self, failed=False):
        try:
            if failed:
                for conn in self.connections:
                    conn.cancel_safe()
                self.stack.pop_all()
            else:
                self.stack.close()
        finally:
            for conn in self.connections:
                if failed:
                    conn.close()
                else:
                    conn.commit()
                    conn.close()


class SqliteSink:
    """Batched executemany on the Django connection, inside the caller's transaction."""

    BATCH = 5000

    def __init__(self, cursor):
        self.ts = _TimeFormat("")
        self.cursor = cursor
        self.buffers = {key: [] for key in TABLES}
        for key in TABLES:
            setattr(self, key, self._appender(key))

    def _appender(self, key):
        buffer = self.buffers[key]

        def append(row):
            buffer.append(row)
            if len(buffer) >= self.BATCH:
                self.flush()

        return append

    def flush(self):
        # Parents before children, so deferred foreign keys are satisfied at commit anyway.
        for key, (table, columns) in TABLES.items():
            rows = self.buffers[key]
            if rows:
                marks = ", ".join("?" * len(columns))
                self.cursor.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",  # noqa: S608
                    rows,
                )
                rows.clear()

    def close(self, failed=False):
        if not failed:
            self.flush()


def _base_data():
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


def _next_ids(cursor):
    ids = {}
    for key, (table, _columns) in TABLES.items():
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}")  # noqa: S608
        ids[key] = cursor.fetchone()[0]
    return ids


def _taken(cursor):
    taken = {}
    for key, column in (("card", "card_number"), ("phone", "phone"), ("referral", "referral_code")):
        cursor.execute(f"SELECT {column} FROM members_member")  # noqa: S608
        taken[key] = {row[0] for row in cursor.fetchall()}
    return taken


def _plain_indexes(cursor):
    """(name, definition) of the indexes on the loaded tables that no constraint owns."""
    cursor.execute(
        """
        SELECT i.relname, pg_get_indexdef(x.indexrelid)
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_class t ON t.oid = x.indrelid
        WHERE t.relname = ANY(%s)
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
        ORDER BY t.relname, i.relname
        """,
        [[table for table, _columns in TABLES.values()]],
    )
    return cursor.fetchall()


STASH = "datagen_dropped_index"  # index definitions kept while a load runs, so none is lost


def _restore_indexes(admin, progress):
    """Rebuild every index a load dropped, including those of an earlier load that died."""
    admin.execute(f"CREATE TABLE IF NOT EXISTS {STASH} (name text PRIMARY KEY, definition text)")
    rows = admin.execute(f"SELECT name, definition FROM {STASH} ORDER BY name").fetchall()  # noqa: S608
    admin.execute("SET maintenance_work_mem = '1GB'")
    admin.execute("SET max_parallel_maintenance_workers = 2")
    for name, definition in rows:
        admin.execute(definition.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS", 1))
        admin.execute(f"DELETE FROM {STASH} WHERE name = %s", [name])  # noqa: S608
    admin.execute(f"DROP TABLE {STASH}")
    if rows:
        progress(f"rebuilt {len(rows)} indexes")


def surveys_and_complaints_hook(*, using, member_ids, purchase_ids, seed, now, progress):
    """Survey answers and complaints for the generated members: left to the surveys app.

    When ``surveys.datagen.generate`` exists it is called with these same keyword arguments
    (``member_ids`` and ``purchase_ids`` are half-open id ranges of the rows just made); until
    then this step says it was skipped.
    """
    try:
        from surveys import datagen as surveys_datagen
    except ImportError:
        surveys_datagen = None
    generate = getattr(surveys_datagen, "generate", None)
    if generate is None:
        progress("surveys and complaints: skipped (surveys.datagen.generate does not exist yet)")
        return None
    return generate(
        using=using,
        member_ids=member_ids,
        purchase_ids=purchase_ids,
        seed=seed,
        now=now,
        progress=progress,
    )


def generate(plan, *, using="default", progress=print):
    """Make ``plan.members`` members and ``plan.purchases`` receipts with their ledger.

    Returns the generator's counts and the seconds each phase took.
    """
    from django.db import connections, transaction

    connection = connections[using]
    timings = {}
    started = time.monotonic()
    program, stores = _base_data()
    with connection.cursor() as cursor:
        ids = _next_ids(cursor)
        taken = _taken(cursor)
    timings["prepare"] = time.monotonic() - started

    if connection.vendor == "postgresql":
        stats = _generate_postgres(plan, connection, program, stores, ids, taken, timings, progress)
    else:
        phase = time.monotonic()
        with transaction.atomic(using=using), connection.cursor() as cursor:
            sink = SqliteSink(cursor)
            generator = Generator(
                plan, program=program, stores=stores, ids=ids, taken=taken, sink=sink
            )
            stats = generator.run(progress)
            sink.close()
        timings["load"] = time.monotonic() - phase
        stats["_ranges"] = (generator.member_id_range, generator.purchase_id_range)
    member_ids, purchase_ids = stats.pop("_ranges")
    phase = time.monotonic()
    surveys_and_complaints_hook(
        using=using,
        member_ids=member_ids,
        purchase_ids=purchase_ids,
        seed=plan.seed,
        now=plan.now,
        progress=progress,
    )
    timings["surveys"] = time.monotonic() - phase
    timings["total"] = time.monotonic() - started
    return stats, timings


def _generate_postgres(plan, connection, program, stores, ids, taken, timings, progress):
    import psycopg
    from psycopg.conninfo import make_conninfo

    dsn = make_conninfo(
        connection.connection.info.dsn, password=connection.settings_dict.get("PASSWORD") or None
    )
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("SET lock_timeout = 0")
        _restore_indexes(admin, progress)  # an earlier load that died left some dropped
        indexes = _plain_indexes(admin.cursor())
        admin.execute(f"CREATE TABLE {STASH} (name text PRIMARY KEY, definition text)")
        admin.cursor().executemany(f"INSERT INTO {STASH} VALUES (%s, %s)", indexes)  # noqa: S608
        phase = time.monotonic()
        # Building an index once from sorted rows is far cheaper than growing it row by row.
        for name, _definition in indexes:
            admin.execute(f'DROP INDEX IF EXISTS "{name}"')
        progress(f"dropped {len(indexes)} indexes for the load; they are rebuilt afterwards")
        failed = True
        try:
            sink = PostgresSink(dsn)
            try:
                generator = Generator(
                    plan, program=program, stores=stores, ids=ids, taken=taken, sink=sink
                )
                stats = generator.run(progress)
                failed = False
            finally:
                sink.close(failed=failed)
            timings["load"] = time.monotonic() - phase
            progress(f"rows copied in {timings['load']:.0f} s; rebuilding indexes")
        finally:
            phase = time.monotonic()
            _restore_indexes(admin, progress)
            timings["indexes"] = time.monotonic() - phase
        phase = time.monotonic()
        for table, _columns in TABLES.values():
            admin.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
            )
            admin.execute(f"VACUUM (ANALYZE) {table}")
        timings["analyze"] = time.monotonic() - phase
    stats["_ranges"] = (generator.member_id_range, generator.purchase_id_range)
    return stats
