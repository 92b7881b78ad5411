"""`make soak`: a bounded mixed API load against a real gunicorn, then `check_ledger` (issue 20).

Seeds members (manage.py generate_data) on the configured database, starts gunicorn on loopback,
and drives from threads, with a fixed seed: look-ups, quotes, earning purchases, redemptions,
refunds, replays of an acknowledged purchase with the same key (the same answer expected) and bad
input (a 4xx expected). Then runs `manage.py check_ledger` and prints requests, req/s, p50/p95/p99
per kind, the 5xx count and the ledger's result. Exits non-zero on any 5xx, any replay answered
differently, or any drift.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/soak .venv/bin/python -m bench.soak \\
        --duration 180 --concurrency 8

``drive()`` is the driver alone; tests/faults/test_soak.py runs it, bounded, in CI.
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Kinds of request and their weights in the mix.
MIX = {"lookup": 30, "quote": 15, "earn": 30, "redeem": 8, "refund": 7, "replay": 5, "bad": 5}


def _call(base, method, path, body, key):
    request = urllib.request.Request(  # noqa: S310  (loopback)
        base + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class Outcome:
    """What a run saw: latencies per kind, statuses, acknowledged purchases, mismatched replays."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latency = defaultdict(list)  # kind -> seconds
        self.statuses = defaultdict(int)
        self.acknowledged = {}  # external_id -> earned points of the first answer
        self.replay_mismatches = 0
        self.unexpected = []  # (kind, status, body) of answers the mix did not expect
        self.seconds = 0.0

    @property
    def requests(self):
        return sum(self.statuses.values())

    @property
    def server_errors(self):
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def report(self):
        lines = [
            f"requests {self.requests} in {self.seconds:.1f} s: "
            f"{self.requests / self.seconds:.1f} req/s; 5xx {self.server_errors}; "
            f"replays answered differently {self.replay_mismatches}; "
            f"statuses {dict(sorted(self.statuses.items()))}"
        ]
        for kind, values in sorted(self.latency.items()):
            q = statistics.quantiles(values, n=100) if len(values) > 1 else values * 99
            lines.append(
                f"  {kind:<7} {len(values):>6}  p50 {q[49] * 1000:7.1f} ms  "
                f"p95 {q[94] * 1000:7.1f} ms  p99 {q[98] * 1000:7.1f} ms"
            )
        return "\n".join(lines)


def drive(base, key, cards, *, duration, concurrency, seed=20, tag=None):
    """Drive the mixed load for ``duration`` seconds from ``concurrency`` threads."""
    outcome = Outcome()
    tag = tag or uuid.uuid4().hex[:6]
    deadline = time.monotonic() + duration
    kinds, weights = list(MIX), list(MIX.values())

    def worker(number):
        rng = random.Random(seed * 1000 + number)  # noqa: S311  (a load mix, not a secret)
        mine = []  # (external_id, body, answer) of this thread's acknowledged purchases
        n = 0
        while time.monotonic() < deadline:
            n += 1
            kind = rng.choices(kinds, weights)[0]
            card = rng.choice(cards)
            if kind in ("replay", "refund") and not mine:
                kind = "earn"
            body, method, path, expect = None, "POST", "/api/v1/purchases", (200, 201)
            if kind == "lookup":
                method, path, expect = "GET", f"/api/v1/members/{card}", (200,)
            elif kind == "quote":
                path, expect = "/api/v1/purchases/quote", (200,)
                body = {"card_number": card, "amount": f"{rng.randint(100, 5000)}.00"}
            elif kind in ("earn", "redeem"):
                body = {
                    "external_id": f"S{tag}-{number}-{n}",
                    "card_number": card,
                    "amount": f"{rng.randint(100, 5000)}.{rng.randint(0, 99):02d}",
                    "redeem_points": rng.randint(1, 50) if kind == "redeem" else 0,
                }
                if kind == "redeem":
                    expect = (200, 201, 409, 422)  # a member may hold too few points
            elif kind == "replay":
                external_id, body, first = rng.choice(mine)
            elif kind == "refund":
                external_id, _body, _first = rng.choice(mine)
                path = f"/api/v1/purchases/{external_id}/refunds"
                body = {"refund_id": f"F{n}", "amount": "1.00"}
                expect = (200, 201, 409, 422)  # a receipt may be refunded in full already
            else:  # bad input: a negative amount
                body = {"external_id": f"B{tag}-{number}-{n}", "card_number": card, "amount": "-1"}
                expect = (400, 422)
            started = time.perf_counter()
            status, answer = _call(base, method, path, body, key)
            elapsed = time.perf_counter() - started
            with outcome.lock:
                outcome.latency[kind].append(elapsed)
                outcome.statuses[status] += 1
                if status not in expect:
                    outcome.unexpected.append((kind, status, answer[:300]))
                if kind == "replay" and (status, answer) != first:
                    outcome.replay_mismatches += 1
                if kind in ("earn", "redeem") and status in (200, 201):
                    outcome.acknowledged[body["external_id"]] = json.loads(answer)["earned_points"]
            if kind in ("earn", "redeem") and status in (200, 201):
                mine.append((body["external_id"], body, (status, answer)))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outcome.seconds = time.monotonic() - started
    return outcome


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=180)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--members", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--port", type=int, default=8111)
    parser.add_argument("--seed", type=int, default=20)
    args = parser.parse_args()
    env = {
        **os.environ,
        "SECRET_KEY": os.environ.get("SECRET_KEY", "soak"),
        "API_THROTTLE_RATE": "1000000000/min",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "loyalty.project.settings",
    }

    def manage(*argv):
        return subprocess.run(  # noqa: S603
            [sys.executable, "manage.py", *argv],
            cwd=REPO,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    manage("migrate", "--noinput", "-v", "0")
    manage("seed_demo")
    manage(
        "generate_data",
        "--members",
        str(args.members),
        "--purchases",
        str(args.members * 3),
        "--seed",
        str(args.seed),
    )
    key = manage("create_api_key", "MSK-01").strip().splitlines()[-1].strip()
    cards = json.loads(
        manage(
            "shell",
            "-c",
            "import json; from members.models import Member; print(json.dumps(list("
            "Member.objects.filter(status='active', merged_into=None)"
            f".order_by('pk').values_list('card_number', flat=True)[:{args.members}])))",
        )
        .strip()
        .splitlines()[-1]
    )
    (REPO / "var").mkdir(exist_ok=True)
    log = (REPO / "var" / "soak-gunicorn.log").open("wb")  # the 4xx warnings of the mix
    gunicorn = subprocess.Popen(  # noqa: S603
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "loyalty.project.wsgi:application",
            "--bind",
            f"127.0.0.1:{args.port}",
            "--workers",
            str(args.workers),
            "--log-level",
            "warning",
        ],  # fmt: skip
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{args.port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                _call(base, "GET", "/healthz", None, key)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("gunicorn did not start") from None
                time.sleep(0.3)
        outcome = drive(
            base, key, cards, duration=args.duration, concurrency=args.concurrency, seed=args.seed
        )
    finally:
        gunicorn.terminate()
        gunicorn.wait(timeout=30)
    print(outcome.report())
    for kind, status, answer in outcome.unexpected[:10]:
        print(f"  unexpected: {kind} {status} {answer!r}")
    ledger = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "check_ledger"], cwd=REPO, env=env, text=True
    )
    print(f"check_ledger exit {ledger.returncode}")
    failed = outcome.server_errors or outcome.replay_mismatches or ledger.returncode
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
