"""CPU per API call without HTTP: the product's WSGI application called in-process (issue 18).

Builds ``loyalty.project.wsgi.application`` and the bare floor (``bench.floor_wsgi``) in one
process and calls each with WSGI environ dicts, interleaved round by round (product, bare, then
bare, product), for four cases: a purchase that earns (a new receipt number each call), a
purchase that spends 10 points, a look-up by card and one by phone. Prints the median over the
rounds of ``time.process_time`` per call, the product over the bare floor, and the SQL
statements one product call runs. No gunicorn, no socket, no client: what is left is Python
and PostgreSQL's answers (PostgreSQL's own CPU is not counted, it is another process).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench SECRET_KEY=x REDIS_URL=redis://... \\
        .venv/bin/python bench/inprocess.py --rounds 7 --calls 300
    ... --only purchase_earn --profile var/bench/earn.prof   (cProfile of the product's calls)

The database must hold generated data (manage.py generate_data) and the demo stores.
"""

import argparse
import cProfile
import io
import json
import os
import statistics
import sys
import time
import urllib.parse
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CASES = ("purchase_earn", "purchase_redeem", "lookup_card", "lookup_phone")

# What the benchmark's gunicorn servers run with (bench/run.py), so that the figures compare.
ENVIRONMENT = {
    "SECRET_KEY": "x",
    "DEBUG": "false",
    "ALLOWED_HOSTS": "127.0.0.1",
    "API_THROTTLE_RATE": "1000000000/min",
    "SECURE_SSL_REDIRECT": "false",
    "LOG_LEVEL": "WARNING",
    "DJANGO_SETTINGS_MODULE": "loyalty.project.settings",
}


def environ(method, path, *, query="", body=None, key=None):
    data = b"" if body is None else json.dumps(body).encode()
    env = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(data),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    if body is not None:
        env["CONTENT_TYPE"] = "application/json"
        env["CONTENT_LENGTH"] = str(len(data))
    if key:
        env["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    return env


def call(app, env):
    """One call, as a WSGI server makes it: the body read and the iterable closed."""
    status = []
    result = app(env, lambda s, headers, exc_info=None: status.append(s))
    try:
        body = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return int(status[0].split()[0]), body


class Requests:
    """Each case's environ for the n-th call, for the product (prefix /api/v1) or the floor."""

    def __init__(self, samples, key, run_id):
        self.samples, self.key, self.run_id = samples, key, run_id

    def make(self, case, server, n):
        prefix = "/api/v1" if server == "product" else ""
        key = self.key if server == "product" else None
        cards, phones, rich = self.samples["cards"], self.samples["phones"], self.samples["rich"]
        if case == "purchase_earn":
            body = {
                "external_id": f"I{self.run_id}{server[0]}-{n}",
                "card_number": cards[n % len(cards)],
                "amount": f"{100 + n * 37 % 4900}.00",
                "redeem_points": 0,
            }
            return environ("POST", f"{prefix}/purchases", body=body, key=key)
        if case == "purchase_redeem":
            body = {
                "external_id": f"J{self.run_id}{server[0]}-{n}",
                "card_number": rich[n % len(rich)],
                "amount": "1000.00",
                "redeem_points": 10,
            }
            return environ("POST", f"{prefix}/purchases", body=body, key=key)
        if case == "lookup_card":
            return environ("GET", f"{prefix}/members/{cards[n % len(cards)]}", key=key)
        phone = urllib.parse.quote(phones[n % len(phones)], safe="")
        return environ("GET", f"{prefix}/members", query=f"phone={phone}", key=key)


def samples_and_key(count):
    from django.core.management import call_command
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT card_number, phone FROM members_member WHERE status = 'active'"
            " AND merged_into_id IS NULL ORDER BY md5(card_number) LIMIT %s",
            [count],
        )
        members = cursor.fetchall()
        cursor.execute(
            # The points must be available now, not pending (a recent buyer's cached balance
            # counts its pending lots too).
            "SELECT card_number FROM members_member m CROSS JOIN LATERAL ("
            " SELECT SUM(remaining) AS available FROM loyalty_pointslot l"
            " WHERE l.member_id = m.id AND l.remaining > 0"
            " AND l.available_from <= now() AND l.expires_at > now()) a"
            " WHERE status = 'active' AND merged_into_id IS NULL AND points_debt = 0"
            " AND points_balance >= 3000 AND a.available >= 3000"
            " ORDER BY md5(card_number) LIMIT %s",
            [count],
        )
        rich = [row[0] for row in cursor.fetchall()]
    out = io.StringIO()
    call_command("create_api_key", "MSK-01", stdout=out)
    key = out.getvalue().strip().splitlines()[-1].strip()
    connection.close()
    cards = [card for card, _phone in members]
    return {"cards": cards, "phones": [phone for _card, phone in members], "rich": rich}, key


def count_queries(app, env):
    from django.db import connection

    statements = []

    def wrapper(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        status, body = call(app, env)
    return status, body, statements


def run_case(app, requests, case, server, start, calls, profiler=None):
    """CPU ms per call over ``calls`` calls, and the statuses seen."""
    statuses = {}
    envs = [requests.make(case, server, start + i) for i in range(calls)]
    if profiler:
        profiler.enable()
    begin = time.process_time()
    for env in envs:
        status, _body = call(app, env)
        statuses[status] = statuses.get(status, 0) + 1
    spent = time.process_time() - begin
    if profiler:
        profiler.disable()
    return spent * 1000 / calls, statuses


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200, help="calls per case and round")
    parser.add_argument("--only", choices=CASES, action="append", help="these cases only")
    parser.add_argument("--no-bare", action="store_true", help="the product only")
    parser.add_argument("--profile", help="write a cProfile of the product's calls here")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--show", action="store_true", help="print the statements of one call")
    args = parser.parse_args()
    for name, value in ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    sys.path.insert(0, str(REPO))

    import django

    django.setup()
    from loyalty.project.wsgi import application as product

    os.environ.setdefault("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/bench")
    from bench import floor_wsgi

    cases = args.only or CASES
    samples, key = samples_and_key(500)
    requests = Requests(samples, key, uuid.uuid4().hex[:8])
    servers = {"product": product}
    if not args.no_bare:
        servers["bare"] = floor_wsgi.application

    queries = {}
    for case in cases:  # warm up (prepared statements, caches), and count one call's statements
        for server, app in servers.items():
            for n in range(20):
                call(app, requests.make(case, server, 10_000_000 + n))
        status, body, statements = count_queries(
            product, requests.make(case, "product", 20_000_000)
        )
        if status >= 300:
            raise SystemExit(f"{case}: {status} {body[:300]!r}")
        queries[case] = len(statements)
        if args.show:
            print(f"-- {case}: {status}")
            for sql in statements:
                print("  ", " ".join(sql.split())[:160])

    # CPU time, not wall time: waits on PostgreSQL and Redis do not count
    profiler = cProfile.Profile(time.process_time) if args.profile else None
    figures = {case: {server: [] for server in servers} for case in cases}
    statuses = {}
    for round_ in range(args.rounds):
        order = list(servers) if round_ % 2 == 0 else list(reversed(servers))
        for case in cases:
            for server in order:
                ms, seen = run_case(
                    servers[server],
                    requests,
                    case,
                    server,
                    round_ * args.calls,
                    args.calls,
                    profiler if server == "product" else None,
                )
                figures[case][server].append(ms)
                for status, n in seen.items():
                    key_ = (case, server, status)
                    statuses[key_] = statuses.get(key_, 0) + n

    print(f"load: {os.getloadavg()[0]:.2f}  rounds {args.rounds} x {args.calls} calls")
    print(f"{'case':18} {'product ms':>10} {'bare ms':>8} {'ratio':>6} {'queries':>7}")
    result = {}
    for case in cases:
        product_ms = statistics.median(figures[case]["product"])
        bare_ms = statistics.median(figures[case]["bare"]) if "bare" in servers else None
        ratio = f"{product_ms / bare_ms:6.2f}" if bare_ms else "     -"
        bare = f"{bare_ms:8.3f}" if bare_ms else "       -"
        print(f"{case:18} {product_ms:10.3f} {bare} {ratio} {queries[case]:7}")
        result[case] = {"product_ms": product_ms, "bare_ms": bare_ms, "queries": queries[case]}
    bad = {k: n for k, n in statuses.items() if k[2] >= 300}
    if bad:
        print("non-2xx answers:", bad)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    if profiler:
        profiler.dump_stats(args.profile)


if __name__ == "__main__":
    main()
