"""Members who hold many open points lots, for the busiest-member benchmark cases (issue 18).

    DATABASE_URL=... python -m bench.lots LOTS MEMBERS

picks MEMBERS members who can buy (active, not merged, no debt) and hold no lot with points left,
gives each LOTS open lots (available now, unexpired, POINTS points each) as bonus lots with their
ledger entries, adds them to the cached balances, and prints the members' card numbers, one a
line. Set-based: three statements whatever LOTS and MEMBERS are, the lots and entries written
through the ledger's own INSERTs (``lot_insert_sql``, ``entry_insert_sql``), so ``manage.py
check_ledger`` stays clean. PostgreSQL only (``generate_series``).
"""

import argparse
import os
import sys
import uuid

POINTS = 100  # per lot: a redeem of a few points takes from one lot, as for a real customer
JOB = "bench_lots"


def hold_open_lots(lots, members, *, now=None):
    """Give ``members`` members with no lot left ``lots`` open lots each; their card numbers.

    Fewer members when fewer qualify. The caller's settings must name a PostgreSQL database.
    """
    from django.db import connection, transaction
    from django.utils import timezone

    from loyalty.engine.ledger import entry_insert_sql, lot_expiry, lot_insert_sql
    from loyalty.models import ACCOUNT_OF_KIND, EntryKind, ProgramSettings

    now = now or timezone.now()
    expires_at = lot_expiry(ProgramSettings.load(), now)
    batch = f"{JOB}-{uuid.uuid4().hex[:16]}"
    kind = EntryKind.BONUS
    with transaction.atomic(), connection.cursor() as cursor:
        # Locked in id order, as every batch writer locks its members.
        cursor.execute(
            """
            SELECT m.id FROM members_member m
            WHERE m.status = 'active' AND m.merged_into_id IS NULL AND m.points_debt = 0
              AND NOT EXISTS (SELECT 1 FROM loyalty_pointslot l
                              WHERE l.member_id = m.id AND l.remaining > 0)
            ORDER BY m.id LIMIT %s FOR NO KEY UPDATE
            """,
            [members],
        )
        ids = [row[0] for row in cursor.fetchall()]
        if not ids:
            return []
        # No debt, so none of a lot goes to repay it: remaining = points.
        cursor.execute(
            lot_insert_sql(
                "SELECT m.id, %s, %s, %s, %s, NULL, %s, %s"
                " FROM unnest(%s::bigint[]) AS m(id) CROSS JOIN generate_series(1, %s)"
            ),
            [POINTS, POINTS, now, expires_at, batch, now, ids, lots],
        )
        cursor.execute(
            entry_insert_sql(
                "SELECT member_id, %s, %s, points, id, %s, %s, batch, expires_at, created_at"
                " FROM loyalty_pointslot WHERE batch = %s"
            ),
            [kind.value, ACCOUNT_OF_KIND[kind].value, "", JOB, batch],
        )
        cursor.execute(
            """
            UPDATE members_member m SET points_balance = m.points_balance + l.points
            FROM (SELECT member_id, SUM(points) AS points FROM loyalty_pointslot
                  WHERE batch = %s GROUP BY member_id) l
            WHERE m.id = l.member_id
            RETURNING m.id, m.card_number
            """,
            [batch],
        )
        cards = dict(cursor.fetchall())
    return [cards[pk] for pk in ids]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lots", type=int, help="open lots each member holds")
    parser.add_argument("members", type=int, help="how many members")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty.project.settings")
    import django

    django.setup()
    for card in hold_open_lots(args.lots, args.members):
        sys.stdout.write(card + "\n")


if __name__ == "__main__":
    main()
