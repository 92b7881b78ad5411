"""Realistic program data at scale, for benchmarks and demos (issue 9): the simulation.

One deterministic simulation (``random.Random(seed)``) walks each member's life in time order
with the engine's own arithmetic (integer cents, points rounded down): purchases earn at the
tier of the moment, some spend points soonest-expiry first (with lot allocations), birthday
bonuses come and go, lots expire at the next nightly run. Rows go out through a sink
(``sinks.py``). Every member's cached balance equals the sum of its entries and of its lots'
remaining points, so ``check_ledger`` passes.

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

The order of the random draws is part of the output: a seed gives the same rows only while every
step draws what it draws in the same order.
"""

import bisect
import random
from collections import deque
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from operator import attrgetter

from loyalty.engine import cards
from loyalty.engine.money import from_cents
from loyalty.engine.tiers import tier_for
from loyalty.project.datagen.names import (
    EMAIL_DOMAINS,
    FIRST_NAMES_F,
    FIRST_NAMES_M,
    LAST_NAMES,
    TRANSLIT,
)
from loyalty.project.datagen.plan import (
    DAY,
    EXPIRE_JOB_SECONDS,
    HOUR,
    ONLINE_PENDING_DAYS,
    WEB_STORE,
    Lot,
    TimeSampler,
)

PURCHASE, BIRTHDAY = 0, 1  # kinds of event in a member's timeline (purchases sort first)


@dataclass
class Person:
    """Who a member is and how they shop: drawn once, before their timeline."""

    first: str
    last: str
    card: str
    phone: str
    referral: str
    email: str
    birth: date | None
    consent: bool
    home: int
    spend_factor: float
    redeem_habit: float


class Life:
    """A member's running state while their events are played in time order."""

    __slots__ = (
        "tier", "tier_since", "below_since", "window", "window_sum", "lots", "all_lots",
        "purchases", "entries", "allocations",
    )  # fmt: skip

    def __init__(self, tier, enrolled):
        self.tier = tier
        self.tier_since = enrolled
        self.below_since = None
        self.window = deque()  # (moment, paid cents) of the tier window
        self.window_sum = 0
        self.lots = []  # lots that may still have points, in creation order
        self.all_lots = []  # every lot, written once the member's story is told
        self.purchases = []
        self.entries = []
        self.allocations = []

    def slide_window(self, moment, window_seconds):
        window = self.window
        while window and window[0][0] <= moment - window_seconds:
            self.window_sum -= window.popleft()[1]

    def add_lot(self, lot):
        self.lots.append(lot)
        self.all_lots.append(lot)


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
        self.stats = dict.fromkeys(
            (
                "members", "purchases", "anonymous", "lots", "entries", "allocations",
                "expired_lots", "backlog_lots", "pending_lots", "feb29_birthdays",
            ),
            0,
        )  # fmt: skip
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
        tiers = self.program.tiers
        return tier_for(value_c, tiers, key=attrgetter("threshold_c"), default=tiers[0])

    # ---- one member's life -----------------------------------------------------------------
    def _member(self, member_id, count):
        """Simulate one member's life in time order and write all of its rows."""
        person = self._identity(member_id)
        enrolled, events = self._timeline(person, count)
        life = Life(self.program.tiers[0], enrolled)
        window_seconds = self.program.tier_window_days * DAY
        for moment, kind in events:
            life.slide_window(moment, window_seconds)
            if kind == BIRTHDAY:
                self._on_birthday(life, moment)
                continue
            self._nightly_downgrade(life, moment)
            self._on_purchase(life, person, moment)
            # Keep the open list short: lots spent to zero are never looked at again.
            if len(life.lots) > 64:
                life.lots = [lot for lot in life.lots if lot.remaining]
        balance = self._close_lots(life)
        self._enrol_rows(member_id, person, life, enrolled, balance)
        self._history_rows(member_id, life)
        stats = self.stats
        stats["members"] += 1
        stats["lots"] += len(life.all_lots)
        stats["entries"] += len(life.entries)
        stats["allocations"] += len(life.allocations)
        return len(life.purchases)

    def _identity(self, member_id):
        """Name, card, phone, referral code, e-mail, birth date, consent and shopping habits."""
        rng = self.rng
        female = rng.random() < 0.55
        first = rng.choice(FIRST_NAMES_F if female else FIRST_NAMES_M)
        last = rng.choice(LAST_NAMES) + ("а" if female else "")
        card = self._unique(self._card, member_id, self.taken["card"])
        phone = self._unique(self._phone, member_id, self.taken["phone"])
        referral = self._unique(self._referral, member_id, self.taken["referral"])
        email = ""
        if rng.random() < 0.7:
            latin = "".join(TRANSLIT.get(ch, ch) for ch in (first[0] + last).lower())
            email = f"{latin}{member_id}@{rng.choice(EMAIL_DOMAINS)}"
        birth = self._birth_date()
        consent = rng.random() < 0.65
        home, _channel = self._store(None)
        return Person(
            first=first,
            last=last,
            card=card,
            phone=phone,
            referral=referral,
            email=email,
            birth=birth,
            consent=consent,
            home=home,
            spend_factor=rng.lognormvariate(0, 0.5),
            redeem_habit=rng.choice((0.0, 0.0, 0.1, 0.3, 0.6)),
        )

    def _birth_date(self):
        rng = self.rng
        if rng.random() >= 0.9:
            return None
        year = rng.randint(1950, 2007)
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        birth = date(year, 1, 1) + timedelta(days=rng.randrange(366 if leap else 365))
        if birth.month == 2 and birth.day == 29:
            self.stats["feb29_birthdays"] += 1
        return birth

    def _timeline(self, person, count):
        """(enrolment moment, [(moment, PURCHASE or BIRTHDAY)] in time order)."""
        rng = self.rng
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
        events = [(moment, PURCHASE) for moment in times]
        if person.birth is not None and person.consent:
            events += [(moment, BIRTHDAY) for moment in self._birthdays(person.birth, enrolled)]
        events.sort()
        return enrolled, events

    def _birthdays(self, birth, enrolled):
        """06:00 UTC of each birthday after enrolment, within the window, up to now."""
        first_year = datetime.fromtimestamp(max(enrolled, self.start), UTC).year
        for year in range(first_year, 9999):
            try:
                birthday = date(year, birth.month, birth.day)
            except ValueError:  # 29 February: the 28th in other years
                birthday = date(year, 2, 28)
            moment = int(datetime(year, birthday.month, birthday.day, 6, tzinfo=UTC).timestamp())
            if moment > self.now:
                break
            if moment > enrolled and moment >= self.start:
                yield moment

    def _on_birthday(self, life, moment):
        program = self.program
        lot = Lot(
            self._next("lot"),
            program.birthday_points,
            moment,
            moment + program.birthday_expiry_days * DAY,
            None,
            moment,
        )
        life.add_lot(lot)
        life.entries.append(("bonus", "bonus", lot.points, None, lot, "birthday_offers", moment))

    def _nightly_downgrade(self, life, moment):
        """Down to the tier the window qualifies for after the grace period below the tier."""
        if life.window_sum < life.tier.threshold_c:
            if life.below_since is None:
                life.below_since = moment
            elif moment - life.below_since > self.program.grace_days * DAY:
                life.tier = self._tier_for(life.window_sum)
                life.tier_since = moment
                life.below_since = None
        else:
            life.below_since = None

    def _on_purchase(self, life, person, moment):
        """A receipt: tier discount, points spent soonest-expiry first, points earned, tier up."""
        program = self.program
        tier = life.tier
        store_id, channel = self._store(person.home)
        amount = self._amount(person.spend_factor)
        discount = (amount * tier.discount_bp + 5000) // 10000
        after = amount - discount
        cap = (program.share_pm * after) // (1000 * program.point_value_c)
        redeem, open_lots = self._redeem_wish(life, person, moment, cap)
        paid = after - redeem * program.point_value_c
        earn = (paid * tier.rate_e4) // 1_000_000
        purchase_id = self._next("purchase")
        life.purchases.append(
            (purchase_id, store_id, moment, channel, amount, discount, redeem, paid, earn, tier)
        )
        if redeem:
            self._spend(life, open_lots, purchase_id, redeem, moment)
        if earn:
            self._earn(life, purchase_id, channel, earn, moment)
        life.window.append((moment, paid))
        life.window_sum += paid
        best = self._tier_for(life.window_sum)
        if best.threshold_c > tier.threshold_c:
            life.tier = best
            life.tier_since = moment
            life.below_since = None

    def _redeem_wish(self, life, person, moment, cap):
        """(points to spend, the lots open now): all that is open up to the cap, or a part."""
        rng = self.rng
        redeem = 0
        open_lots = None
        if person.redeem_habit and rng.random() < person.redeem_habit:
            open_lots = [
                lot
                for lot in life.lots
                if lot.remaining and lot.available_from <= moment < lot.expires_at
            ]
            available = sum(lot.remaining for lot in open_lots)
            if available >= 100:
                redeem = min(available, cap)
                if rng.random() < 0.3:
                    redeem = rng.randint(1, redeem) if redeem else 0
        return redeem, open_lots

    def _spend(self, life, open_lots, purchase_id, redeem, moment):
        open_lots.sort(key=lambda lot: (lot.expires_at, lot.id))
        left = redeem
        for lot in open_lots:
            take = min(lot.remaining, left)
            lot.remaining -= take
            left -= take
            life.allocations.append((purchase_id, lot.id, take))
            if not left:
                break
        life.entries.append(("redeem", "redeemed", -redeem, purchase_id, None, "", moment))

    def _earn(self, life, purchase_id, channel, earn, moment):
        program = self.program
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
        life.add_lot(lot)
        life.entries.append(("earn", "issued", earn, purchase_id, lot, "", moment))

    def _close_lots(self, life):
        """The member as of now; returns the balance (the lots' remaining points).

        The nightly job has written off every lot that expired before its last run (00:05
        UTC); lots that expired since are the backlog of the next run.
        """
        now = self.now
        life.slide_window(now, self.program.tier_window_days * DAY)
        if life.window_sum < life.tier.threshold_c and life.below_since is None:
            life.below_since = now
        balance = 0
        stats = self.stats
        for lot in life.all_lots:
            if lot.remaining and lot.expires_at <= now:
                run = (lot.expires_at // DAY) * DAY + EXPIRE_JOB_SECONDS
                if run < lot.expires_at:
                    run += DAY
                if run <= now:
                    life.entries.append(
                        ("expire", "expired", -lot.remaining, None, lot, "expire_points", run)
                    )
                    lot.remaining = 0
                    stats["expired_lots"] += 1
                else:
                    stats["backlog_lots"] += 1
            if lot.available_from > now:
                stats["pending_lots"] += 1
            balance += lot.remaining
        return balance

    def _referral_link(self, member_id):
        """About 3% of members were referred by an earlier generated member."""
        rng = self.rng
        first_member = self.member_id_range[0]
        if member_id > first_member and rng.random() < 0.03:
            return rng.randrange(first_member, member_id)
        return None

    # ---- rows ------------------------------------------------------------------------------
    def _enrol_rows(self, member_id, person, life, enrolled, balance):
        """The member row (drawn last: referrer, status, language)."""
        rng = self.rng
        ts = self._ts
        referred_by = self._referral_link(member_id)
        parts = (person.first, person.last, person.email, person.phone.lstrip("+"), person.card)
        search_text = " ".join(part for part in parts if part).lower()
        status = "blocked" if rng.random() < 0.003 else "active"
        language = "ru" if rng.random() < 0.93 else "en"
        enrolled_ts = ts(enrolled)
        consent = person.consent
        self.sink.member(
            (
                member_id, person.card, person.phone, person.email, person.first, person.last,
                person.birth.isoformat() if person.birth else None, language,
                consent, enrolled_ts if consent else None, "store" if consent else "", "",
                status, life.tier.id, ts(life.tier_since),
                ts(life.below_since) if life.below_since else None,
                balance, 0, enrolled_ts, person.home, "store", None, person.referral, referred_by,
                None, None, search_text,
            )
        )  # fmt: skip

    def _history_rows(self, member_id, life):
        """The member's purchases, lots, ledger entries and allocations, in that order."""
        sink = self.sink
        ts = self._ts
        for purchase_id, store_id, moment, *paid_and_earned, tier in life.purchases:
            self._purchase_row(purchase_id, store_id, member_id, moment, *paid_and_earned, tier.id)
        for lot in life.all_lots:
            sink.lot(
                (
                    lot.id, member_id, lot.points, lot.remaining, ts(lot.available_from),
                    ts(lot.expires_at), lot.purchase_id, ts(lot.created_at),
                )
            )  # fmt: skip
        for kind, account, points, purchase_id, lot, job, moment in life.entries:
            sink.entry(
                (
                    self._next("entry"), member_id, kind, account, points, purchase_id, None,
                    lot.id if lot else None, None, "", job, "",
                    ts(lot.expires_at) if lot and kind != "expire" else None, ts(moment),
                )
            )  # fmt: skip
        for purchase_id, lot_id, points in life.allocations:
            sink.allocation((self._next("allocation"), purchase_id, lot_id, points, 0))

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
