"""The bare floor: a WSGI app with psycopg 3 and no framework (issue 9).

It runs the product's purchase transaction and member look-ups as hand-written SQL, so a
benchmark can say how much of a figure is the machine (HTTP, gunicorn, PostgreSQL) and how much
is Django, DRF and our own code. Same tables, same locks, same rows written as
``record_purchase``: lock the member, spend lots soonest-expiry first (with allocations),
insert the purchase, the earn lot and the ledger entries, update the cached balance. A look-up
is one statement in autocommit: the member, its tier and the sums of its lots with points left
(the rows the product's ``member_with_balance`` reads).

    gunicorn bench.floor_wsgi:application  (DATABASE_URL names the database)
"""

import json
import os
from decimal import ROUND_FLOOR, Decimal

import psycopg

DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/bench")
EXPIRY_DAYS = 365
_conn = None


def connection():
    """One connection per worker process, opened after the fork, in autocommit: a look-up is
    one statement on its own, a purchase opens its transaction."""
    global _conn
    if _conn is None or _conn.closed:
        _conn = psycopg.connect(
            DATABASE_URL.replace("postgres://", "postgresql://", 1), autocommit=True
        )
    return _conn


def answer(start_response, status, body):
    data = json.dumps(body).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]


MEMBER_SQL = """
SELECT m.id, m.card_number, m.first_name, m.last_name, m.phone, m.email, m.birth_date,
       m.status, m.marketing_consent, m.referral_code, m.enrolled_at, m.points_debt, t.code,
       t.name,
       COALESCE(SUM(l.remaining) FILTER (WHERE l.available_from <= now()
                                          AND l.expires_at > now()), 0),
       COALESCE(SUM(l.remaining) FILTER (WHERE l.available_from > now()), 0)
FROM members_member m
JOIN loyalty_tier t ON t.id = m.tier_id
LEFT JOIN loyalty_pointslot l ON l.member_id = m.id AND l.remaining > 0
WHERE {where}
GROUP BY m.id, t.id
"""


def member_body(row):
    (_id, card, first, last, phone, email, birth, status, consent, referral, enrolled, debt, code,
     name, avail, pending) = row  # fmt: skip
    return {
        "card_number": card,
        "first_name": first,
        "last_name": last,
        "phone": phone,
        "email": email,
        "birth_date": birth.isoformat() if birth else None,
        "tier": {"code": code, "name": name},
        "balance": {"available": int(avail) - debt, "pending": int(pending)},
        "status": status,
        "marketing_consent": consent,
        "referral_code": referral,
        "enrolled_at": enrolled.isoformat(),
    }


def lookup(start_response, where, value, *, listed=False):
    """One member by card, or (``listed``) the members with a phone as ``{count, results}``."""
    row = connection().execute(MEMBER_SQL.format(where=where), [value]).fetchone()
    if listed:
        results = [member_body(row)] if row else []
        return answer(start_response, "200 OK", {"count": len(results), "results": results})
    if row is None:
        return answer(start_response, "404 Not Found", {"error": {"code": "member_not_found"}})
    return answer(start_response, "200 OK", member_body(row))


CONSUME_SQL = """
WITH first AS (  -- a lot holds at least one point: never more lots than points are needed
    SELECT id, remaining, expires_at FROM loyalty_pointslot
    WHERE member_id = %(member)s AND remaining > 0
      AND available_from <= now() AND expires_at > now()
    ORDER BY expires_at, id LIMIT %(points)s
), open AS (
    SELECT id, remaining,
           SUM(remaining) OVER (ORDER BY expires_at, id) - remaining AS before
    FROM first
), take AS (
    SELECT id, LEAST(remaining, %(points)s - before) AS points FROM open
    WHERE before < %(points)s
)
UPDATE loyalty_pointslot l SET remaining = l.remaining - take.points
FROM take WHERE l.id = take.id
RETURNING l.id, take.points
"""


def purchase(start_response, body):
    card = body["card_number"]
    amount = Decimal(body["amount"]).quantize(Decimal("0.01"))
    redeem = int(body.get("redeem_points") or 0)
    conn = connection()
    with conn.transaction():
        row = conn.execute(
            "SELECT m.id, m.points_balance, m.points_debt, t.id, t.earn_rate "
            "FROM members_member m JOIN loyalty_tier t ON t.id = m.tier_id "
            "WHERE m.card_number = %s FOR NO KEY UPDATE OF m",
            [card],
        ).fetchone()
        if row is None:
            return answer(start_response, "404 Not Found", {"error": {"code": "member_not_found"}})
        member_id, balance, debt, tier_id, rate = row
        taken = []
        if redeem:
            taken = conn.execute(CONSUME_SQL, {"member": member_id, "points": redeem}).fetchall()
            if sum(points for _lot, points in taken) != redeem:
                raise ValueError("insufficient points")  # rolls back
        paid = amount - redeem
        earned = int((paid * rate).to_integral_value(rounding=ROUND_FLOOR))
        purchase_id = conn.execute(
            "INSERT INTO loyalty_purchase (store_id, external_id, member_id, occurred_at, channel,"
            " amount, discount_amount, redeemed_points, redeemed_value, paid_amount,"
            " earned_points, coupon_code, tier_id, refunded_amount, reversed_points,"
            " returned_points, qualifying_amount, is_historical, fingerprint, response,"
            " created_at) VALUES (%s, %s, %s, now(), 'store', %s, 0, %s, %s, %s, %s, '', %s, 0,"
            " 0, 0, %s, false, '', '', now()) RETURNING id",
            [1, body["external_id"], member_id, amount, redeem, redeem, paid, earned, tier_id,
             paid],
        ).fetchone()[0]  # fmt: skip
        if taken:
            conn.cursor().executemany(
                "INSERT INTO loyalty_lotallocation (purchase_id, lot_id, points, returned)"
                " VALUES (%s, %s, %s, 0)",
                [(purchase_id, lot_id, points) for lot_id, points in taken],
            )
            conn.execute(
                "INSERT INTO loyalty_ledgerentry (member_id, kind, account, points, purchase_id,"
                " reason, job, batch, created_at) VALUES (%s, 'redeem', 'redeemed', %s, %s, '',"
                " '', '', now())",
                [member_id, -redeem, purchase_id],
            )
        if earned:
            repaid = min(earned, debt)
            conn.execute(
                "WITH lot AS (INSERT INTO loyalty_pointslot (member_id, points, remaining,"
                " available_from, expires_at, purchase_id, created_at) VALUES (%(m)s, %(e)s,"
                " %(r)s, now(), now() + interval '365 days', %(p)s, now()) RETURNING id,"
                " expires_at)"
                " INSERT INTO loyalty_ledgerentry (member_id, kind, account, points, purchase_id,"
                " lot_id, reason, job, batch, expires_at, created_at)"
                " SELECT %(m)s, 'earn', 'issued', %(e)s, %(p)s, lot.id, '', '', '',"
                " lot.expires_at, now() FROM lot",
                {"m": member_id, "e": earned, "r": earned - repaid, "p": purchase_id},
            )
            debt -= repaid
        delta = earned - redeem
        conn.execute(
            "UPDATE members_member SET points_balance = points_balance + %s, points_debt = %s"
            " WHERE id = %s",
            [delta, debt, member_id],
        )
    return answer(
        start_response,
        "201 Created",
        {
            "external_id": body["external_id"],
            "card_number": card,
            "amount": str(amount),
            "redeemed_points": redeem,
            "paid_amount": str(paid),
            "earned_points": earned,
            "balance": balance + delta,
        },
    )


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    method = environ["REQUEST_METHOD"]
    if method == "POST" and path == "/purchases":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        return purchase(start_response, json.loads(environ["wsgi.input"].read(length)))
    if method == "GET" and path.startswith("/members/"):
        return lookup(start_response, "m.card_number = %s", path[len("/members/") :])
    if method == "GET" and path == "/members":
        query = dict(
            part.split("=", 1) for part in environ.get("QUERY_STRING", "").split("&") if "=" in part
        )
        phone = query.get("phone", "").replace("%2B", "+")
        return lookup(start_response, "m.phone = %s", phone, listed=True)
    return answer(start_response, "404 Not Found", {"error": {"code": "not_found"}})
