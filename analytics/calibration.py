"""The purchase history as the lifetime-value models read it, and their fit (SPEC 8.1).

The calibration period of a customer runs from their first purchase to the end of DATE (in the
project's time zone); a day on which they bought is one purchase, whatever the number of
receipts that day (Fader, Hardie & Lee 2005 count CDNOW's purchases so). Times are in weeks.
Identified buyers only: an anonymous receipt belongs to no customer. Gamma-Gamma reads the
spend of the repeat days (the first day's spend is left out, as in Fader & Hardie 2013).
"""

from datetime import date, datetime, time, timedelta

import numpy as np
from django.db.models import Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from analytics import clv
from analytics.sql import rows_over
from loyalty.models import Purchase


def _day(value):
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def calibration(until):
    """(x, t_x, T, repeat spend) arrays, one entry per identified buyer up to ``until``."""
    zone = timezone.get_current_timezone()
    end = datetime.combine(until + timedelta(days=1), time.min, tzinfo=zone)
    # One row per (customer, day) with the day's spend (the ORM writes the day in each
    # backend's SQL), then per customer with a window for the first day: set-based throughout.
    days = (
        Purchase.objects.filter(member__isnull=False, occurred_at__lt=end)
        .annotate(day=TruncDate("occurred_at", tzinfo=zone))
        .values("member_id", "day")
        .annotate(spend=Sum("amount"))
        .order_by()
    )
    rows = rows_over(
        days,
        """
        SELECT COUNT(*) - 1, MIN(day), MAX(day), SUM(CASE WHEN day = first THEN 0 ELSE spend END)
        FROM (
            SELECT member_id, day, spend, MIN(day) OVER (PARTITION BY member_id) AS first
            FROM {rows} days
        ) days
        GROUP BY member_id
        """,
    )
    x = np.array([row[0] for row in rows], dtype=float)
    first = [_day(row[1]) for row in rows]
    t_x = np.array([(_day(row[2]) - day).days for row, day in zip(rows, first, strict=True)])
    T = np.array([(until - day).days for day in first], dtype=float)
    spend = np.array([float(row[3] or 0) for row in rows], dtype=float)
    return x, t_x / clv.WEEK, T / clv.WEEK, spend


def fit_history(until):
    """The JSON object of ``manage.py clv``: both models fitted on the history up to ``until``."""
    x, t_x, T, spend = calibration(until)
    result = {
        "until": until.isoformat(),
        "time_unit": "week",
        "customers": len(x),
        "repeat_customers": int((x > 0).sum()),
        "bgnbd": None,
        "gamma_gamma": None,
    }
    if len(x) >= clv.MIN_CUSTOMERS and np.any(x > 0):
        result["bgnbd"] = clv.fit_bgnbd(x, t_x, T)
    # Customers whose repeat days cost nothing have no spend to model (log of 0).
    usable = (x > 0) & (spend > 0)
    if usable.sum() >= clv.MIN_CUSTOMERS:
        result["gamma_gamma"] = clv.fit_gamma_gamma(x[usable], spend[usable] / x[usable])
    return result
