"""SQL expressions that differ between PostgreSQL and SQLite, for the analytics job.

Datetimes are compared as the database stores them (``loyalty.engine.db.dt``). SQLite has no time
zones: a local date there is the UTC time shifted by the zone's offset at the run's moment, which
is exact for zones without daylight saving time (all of Russia's) and the embedded mode's limit.
"""

import zoneinfo

from django.conf import settings

from loyalty.engine.db import by_dialect


def _quote(text):
    return "'" + str(text).replace("'", "''") + "'"


def default_zone():
    return settings.TIME_ZONE


def _offset_modifier(zone_name, moment):
    offset = moment.astimezone(zoneinfo.ZoneInfo(zone_name)).utcoffset()
    minutes = int(offset.total_seconds() // 60)
    return f"{minutes:+d} minutes"


class Dialect:
    """The expressions, for one run (SQLite offsets are taken at ``moment``)."""

    def __init__(self, moment, zones=()):
        self.postgres = by_dialect(postgres=True, sqlite=False)
        self.moment = moment
        self.zones = sorted({default_zone(), *zones})

    def zone_of(self, store_alias):
        """The time zone of a (possibly missing) store row, as an SQL expression."""
        return f"COALESCE({store_alias}.time_zone, {_quote(default_zone())})"

    def local_date(self, ts, zone_sql):
        if self.postgres:
            return f"(({ts}) AT TIME ZONE {zone_sql})::date"
        cases = " ".join(
            f"WHEN {_quote(zone)} THEN {_quote(_offset_modifier(zone, self.moment))}"
            for zone in self.zones
        )
        fallback = _quote(_offset_modifier(default_zone(), self.moment))
        return f"date({ts}, CASE {zone_sql} {cases} ELSE {fallback} END)"

    def month_number(self, ts):
        """year × 12 + month − 1 of a time, in the project's time zone."""
        zone = _quote(default_zone())
        if self.postgres:
            return (
                f"(EXTRACT(YEAR FROM ({ts}) AT TIME ZONE {zone}) * 12"
                f" + EXTRACT(MONTH FROM ({ts}) AT TIME ZONE {zone}) - 1)::integer"
            )
        modifier = _quote(_offset_modifier(default_zone(), self.moment))
        return (
            f"(CAST(strftime('%%Y', {ts}, {modifier}) AS INTEGER) * 12"
            f" + CAST(strftime('%%m', {ts}, {modifier}) AS INTEGER) - 1)"
        )

    def days_between(self, earlier, later):
        """Days from ``earlier`` to ``later`` as a real number."""
        if self.postgres:
            return f"(EXTRACT(EPOCH FROM ({later}) - ({earlier})) / 86400.0)"
        return f"(julianday({later}) - julianday({earlier}))"

    def moment_param(self):
        """A placeholder for a datetime used inside an expression."""
        return "CAST(%s AS timestamp with time zone)" if self.postgres else "%s"


def rows_over(queryset, outer):
    """The rows of ``outer`` (SQL with ``{rows}`` where the queryset's own SQL goes, as a derived
    table): an aggregate over a grouped queryset, which the ORM cannot write (the ORM still
    writes the inner part in each backend's dialect)."""
    from django.db import connections

    inner, params = queryset.query.sql_with_params()
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(outer.format(rows=f"({inner})"), params)
        return cursor.fetchall()
