"""`make bench`: the product against its two floors, measured in the same run (issues 9, 18).

Starts three gunicorn servers with the same settings (the bare psycopg floor, the minimal
Django + DRF floor, the product), then for every case runs wrk on loopback against each in turn,
interleaved floor, product, floor (the order flips each round), takes the median of the rounds,
and reports throughput, latency, errors, deadlocks, every server's ratio to both floors (page
cases have no floor), the CPU each request cost (milliseconds of the server's processes and the
PostgreSQL backends) and where the CPU went (server, PostgreSQL backends of this database, wrk,
everything else on the machine). Prints a table and writes JSON (var/bench/results.json).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python bench/run.py

With ``--compare-dir DIR`` a fourth server, "before", runs the product of another tree (e.g.
``git worktree add /tmp/before REV``) in the same interleaved rounds, reported as product ÷
before. The busiest-member cases buy for one member holding 10, 1,000 or 50,000 open lots,
prepared before each run by ``bench.lots`` (a fresh member for every server and round).

The database must hold generated data (manage.py generate_data) and the demo stores.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")

SERVERS = {
    # name: (WSGI app, settings module or None, URL prefix); the product's app and settings
    # come from the product tree (product_modules), so one run.py drives an old or a new tree.
    "bare": ("bench.floor_wsgi:application", None, ""),
    "drf": ("bench.drf_floor.wsgi:application", "bench.drf_floor.settings", ""),
    "product": (None, None, "/api/v1"),
    "before": (None, None, "/api/v1"),  # the product of --compare-dir
}
PORTS = {"bare": 8101, "drf": 8102, "product": 8103, "before": 8104}
# A letter per server in receipt numbers (unique per store): never two servers alike.
TAGS = {"bare": "b", "drf": "d", "product": "p", "before": "o"}
FLOORS = ("bare", "drf")
# The busiest-member cases: open lots the member holds when a run starts, and points redeemed.
BUSIEST_LOTS = ((10, 0), (1000, 0), (50000, 0), (10, 10), (50000, 10))
# Where the product keeps its WSGI module and settings, newest layout first.
PRODUCT_LAYOUTS = [
    ("loyalty/project/wsgi.py", "loyalty.project.wsgi", "loyalty.project.settings"),
    ("loyalty/wsgi.py", "loyalty.wsgi", "loyalty.settings"),
]


def product_modules(product_dir, module=None, settings=None):
    """(WSGI module, settings module) of the product tree: as given, or found in its layout."""
    found = next(
        ((wsgi, conf) for path, wsgi, conf in PRODUCT_LAYOUTS if (product_dir / path).exists()),
        PRODUCT_LAYOUTS[-1][1:],
    )
    return module or found[0], settings or found[1]


LUA_COMMON = """
local counter = 0
statuses = {}
local threads = {}
local nthreads = 0
function setup(thread)
  thread:set("tid", nthreads)
  nthreads = nthreads + 1
  table.insert(threads, thread)
end
function init(args)
  math.randomseed(os.time() * 1000 + tid)
  statuses = {}
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    local s = thread:get("statuses")
    for code, n in pairs(s) do merged[code] = (merged[code] or 0) + n end
  end
  local parts = {}
  for code, n in pairs(merged) do table.insert(parts, string.format('"%d": %d', code, n)) end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "p50": %d, "p95": %d, "p99": %d, '
    .. '"max": %d, "socket_errors": %d, "statuses": {%s}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, e.connect + e.read + e.write + e.timeout,
    table.concat(parts, ", ")))
end
"""


def lua_list(values):
    return "{" + ",".join(json.dumps(value) for value in values) + "}"


def purchase_script(path, cards, headers, prefix, redeem):
    """Each request a new receipt number: <prefix><thread>-<counter>."""
    amount = "string.format('%d.00', math.random(100, 5000))" if not redeem else "'1000.00'"
    return (
        LUA_COMMON
        + f"""
local cards = {lua_list(cards)}
local headers = {headers}
function request()
  counter = counter + 1
  local card = cards[math.random(#cards)]
  local body = string.format(
    '{{"external_id": "{prefix}%d-%d", "card_number": "%s", "amount": "%s", '
    .. '"redeem_points": {redeem}}}', tid, counter, card, {amount})
  return wrk.format("POST", "{path}", headers, body)
end
"""
    )


def get_script(paths, headers):
    return (
        LUA_COMMON
        + f"""
local paths = {lua_list(paths)}
local headers = {headers}
function request()
  return wrk.format("GET", paths[math.random(#paths)], headers)
end
"""
    )


def segment_queries(samples):
    """Segment definitions as the segment form sends them: one criterion or several."""
    stores, tiers = samples["stores"], samples["tiers"]
    queries = [
        "name=b",  # everyone
        f"name=b&tiers={tiers[-1]}",
        f"name=b&tiers={tiers[1 % len(tiers)]}&consent=yes",
        "name=b&lapsed_days=90",
        "name=b&lapsed_days=180&consent=yes&has_email=yes",
        f"name=b&bought_at_stores={stores[0]}",
        f"name=b&enrolled_stores={stores[0]}&enrolled_stores={stores[-1]}",
        "name=b&purchases_min=3&activity_days=90",
        "name=b&spend_min=10000&activity_days=365",
        "name=b&purchases_max=0&activity_days=90",
        "name=b&birthday_month=3&consent=yes",
        "name=b&enrolled_from=2025-06-01&enrolled_to=2025-12-31",
    ]
    return queries


def lua_headers(headers):
    return "{" + ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()) + "}"


# ---- CPU accounting -----------------------------------------------------------------------------
def proc_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def machine_ticks():
    """(busy, steal) ticks of the whole machine; steal is time the host gave to other guests."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle, steal = values[3] + values[4], values[7]
    return sum(values) - idle - steal, steal


def children(pid):
    try:
        out = subprocess.run(  # noqa: S603
            ["/usr/bin/pgrep", "-P", str(pid)], capture_output=True, text=True
        ).stdout
    except FileNotFoundError:
        return []
    return [int(p) for p in out.split()]


class CpuSample:
    def __init__(self, groups):
        self.groups = groups  # name -> [pid]
        self.ticks = {name: {pid: proc_ticks(pid) for pid in pids} for name, pids in groups.items()}
        self.busy, self.steal = machine_ticks()
        self.time = time.monotonic()

    def since(self, before):
        seconds = self.time - before.time
        out = {}
        accounted = 0
        for name, pids in self.ticks.items():
            used = 0
            for pid, ticks in pids.items():
                start = before.ticks.get(name, {}).get(pid)
                if ticks is not None and start is not None:
                    used += ticks - start
            accounted += used
            out[name] = round(used / CLK_TCK / seconds, 2)
        out["other"] = round(max(0, self.busy - before.busy - accounted) / CLK_TCK / seconds, 2)
        # Cores the hypervisor ran someone else on while we waited: a tail the code cannot help.
        out["steal"] = round((self.steal - before.steal) / CLK_TCK / seconds, 2)
        return out  # cores busy on average


# ---- the run ------------------------------------------------------------------------------------
class Bench:
    def __init__(self, args):
        self.args = args
        self.dsn = args.database_url.replace("postgres://", "postgresql://", 1)
        self.dbname = urllib.parse.urlsplit(self.dsn).path.lstrip("/")
        self.product_dir = Path(args.product_dir).resolve()
        self.out_dir = Path(args.out).resolve().parent
        self.out_dir.mkdir(parents=True, exist_ok=True)
        module, self.settings = product_modules(
            self.product_dir, args.product_module, args.product_settings
        )
        self.apps = dict(SERVERS, product=(f"{module}:application", self.settings, "/api/v1"))
        del self.apps["before"]
        self.trees = dict.fromkeys(self.apps, self.product_dir)
        self.compare_dir = Path(args.compare_dir).resolve() if args.compare_dir else None
        if self.compare_dir:
            module, settings = product_modules(self.compare_dir)
            self.apps["before"] = (f"{module}:application", settings, "/api/v1")
            self.trees["before"] = self.compare_dir
        self.servers = {}
        self.run_id = uuid.uuid4().hex[:6]
        # One key for every process of the run, so the staff session made here stays valid.
        self.secret_key = os.environ.get("SECRET_KEY") or "bench-" + uuid.uuid4().hex

    def env(self, settings=None, tree=None):
        env = dict(os.environ)
        env.update(
            DATABASE_URL=self.args.database_url,
            PYTHONPATH=f"{tree or self.product_dir}{os.pathsep}{REPO}",
            SECRET_KEY=self.secret_key,
            API_THROTTLE_RATE="1000000000/min",
            REDIS_URL=self.args.redis_url,
            ALLOWED_HOSTS="127.0.0.1,localhost",
            SECURE_SSL_REDIRECT="false",
            SESSION_COOKIE_SECURE="false",
            DEBUG="false",
            LOG_LEVEL="WARNING",
        )
        if settings:
            env["DJANGO_SETTINGS_MODULE"] = settings
        return env

    def manage(self, *argv):
        return subprocess.run(  # noqa: S603
            [sys.executable, "manage.py", *argv],
            cwd=self.product_dir,
            env=self.env(self.settings),
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    def start_servers(self):
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        # The back-office search case renders pages, whose static files need the manifest.
        for name in ("product", "before"):
            if name in self.apps:
                subprocess.run(  # noqa: S603
                    [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
                    cwd=self.trees[name],
                    env=self.env(self.apps[name][1], self.trees[name]),
                    check=True,
                )
        for name, (app, settings, _prefix) in self.apps.items():
            command = [
                gunicorn, app, "--workers", str(self.args.workers), "--worker-class", "sync",
                "--bind", f"127.0.0.1:{PORTS[name]}", "--backlog", "2048",
                "--log-level", "warning", "--timeout", "60",
            ]  # fmt: skip
            self.servers[name] = subprocess.Popen(  # noqa: S603
                command, cwd=self.trees[name], env=self.env(settings, self.trees[name])
            )
        deadline = time.monotonic() + 240  # a loaded machine imports Django slowly
        for name in self.apps:
            url = f"http://127.0.0.1:{PORTS[name]}/"
            while True:
                try:
                    urllib.request.urlopen(url, timeout=2)  # noqa: S310  (loopback)
                    break
                except urllib.error.HTTPError:
                    break  # it answers
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{name} server did not start") from None
                    time.sleep(0.3)

    def stop_servers(self):
        for process in self.servers.values():
            process.terminate()
        for process in self.servers.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()

    # -- data the scripts draw from --
    def samples(self):
        n = self.args.sample
        with psycopg.connect(self.dsn) as conn:
            members = conn.execute(
                "SELECT card_number, phone FROM members_member TABLESAMPLE SYSTEM (5) "
                "WHERE status = 'active' AND merged_into_id IS NULL LIMIT %s",
                [n],
            ).fetchall()
            rich = conn.execute(
                """
                SELECT m.card_number FROM members_member m
                CROSS JOIN LATERAL (
                    SELECT SUM(remaining) AS available FROM loyalty_pointslot l
                    WHERE l.member_id = m.id AND l.remaining > 0
                      AND l.available_from <= now() AND l.expires_at > now()) a
                WHERE m.status = 'active' AND m.merged_into_id IS NULL
                  AND m.points_balance >= 1500 AND m.points_debt = 0 AND a.available >= 1200
                LIMIT %s
                """,
                [n],
            ).fetchall()
            names = conn.execute(
                "SELECT DISTINCT lower(left(last_name, 5)) FROM members_member "
                "TABLESAMPLE SYSTEM (1) WHERE last_name <> '' LIMIT 200"
            ).fetchall()
            stores = conn.execute("SELECT id, code FROM loyalty_store ORDER BY id").fetchall()
            tiers = conn.execute("SELECT id FROM loyalty_tier ORDER BY threshold").fetchall()
        if not members or not rich:
            raise SystemExit("No members to benchmark with: run manage.py generate_data first")
        return {
            "cards": [row[0] for row in members],
            "phones": [row[1] for row in members],
            "rich": [row[0] for row in rich],
            "names": [row[0] for row in names],
            "stores": [row[0] for row in stores],
            "store_codes": [row[1] for row in stores],
            "tiers": [row[0] for row in tiers],
        }

    def credentials(self):
        key = self.manage("create_api_key", "MSK-01").strip().splitlines()[-1].strip()
        session = (
            self.manage(
                "shell",
                "-c",
                "from django.contrib.sessions.backends.db import SessionStore\n"
                "from loyalty.models import User\n"
                "u, _ = User.objects.get_or_create(username='bench', "
                "defaults={'is_staff': True, 'is_superuser': True})\n"
                "s = SessionStore()\n"
                "s['_auth_user_id'] = str(u.pk)\n"
                "s['_auth_user_backend'] = 'django.contrib.auth.backends.ModelBackend'\n"
                "s['_auth_user_hash'] = u.get_session_auth_hash()\n"
                "s.create()\n"
                "print(s.session_key)",
            )
            .strip()
            .splitlines()[-1]
        )
        return key, session

    # -- one wrk run --
    def wrk(self, server, script, connections, duration):
        path = self.out_dir / f"{server}.lua"
        path.write_text(script)
        threads = min(self.args.threads, connections)
        command = [
            self.args.wrk, "-t", str(threads), "-c", str(connections), "-d", f"{duration}s",
            "--timeout", "10s", "-s", str(path), f"http://127.0.0.1:{PORTS[server]}",
        ]  # fmt: skip
        wrk = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)  # noqa: S603
        master = self.servers[server].pid
        groups = {
            "server": [master, *children(master)],
            "postgres": self.backends(),
            "wrk": [wrk.pid],
        }
        before = CpuSample(groups)
        deadlocks, checkpoints = self.deadlocks(), self.checkpoints()
        output = wrk.stdout.read()
        # Reap wrk ourselves: its CPU time comes with it (its /proc entry is gone after).
        _pid, status, usage = os.wait4(wrk.pid, 0)
        wrk.returncode = os.waitstatus_to_exitcode(status)
        groups["postgres"] = sorted(set(groups["postgres"]) | set(self.backends()))
        after = CpuSample(groups)
        time.sleep(1)  # requests in flight when wrk stopped still commit; let them land
        wrk_seconds = (
            usage.ru_utime + usage.ru_stime - (before.ticks["wrk"][wrk.pid] or 0) / CLK_TCK
        )
        result = wrk_result(output)
        cpu = after.since(before)
        cpu["wrk"] = round(wrk_seconds / (after.time - before.time), 2)
        cpu["other"] = round(max(0.0, cpu["other"] - cpu["wrk"]), 2)
        return {
            **throughput(result),
            "deadlocks": self.deadlocks() - deadlocks,
            "checkpoints": self.checkpoints() - checkpoints,
            "cpu": cpu,
        }

    def backends(self):
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [self.dbname],
            ).fetchall()
        return [row[0] for row in rows]

    def deadlocks(self):
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return conn.execute(
                "SELECT deadlocks FROM pg_stat_database WHERE datname = %s", [self.dbname]
            ).fetchone()[0]

    def checkpoints(self):
        """Checkpoints PostgreSQL has begun (a checkpoint's writes can make a tail)."""
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            try:
                sql = "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter"
                return conn.execute(sql).fetchone()[0]
            except psycopg.errors.UndefinedColumn:  # PostgreSQL 17 moved them
                conn.rollback()
                sql = "SELECT num_done FROM pg_stat_checkpointer"  # skipped ones not counted
                return conn.execute(sql).fetchone()[0]

    def member_state(self, card):
        with psycopg.connect(self.dsn) as conn:
            return conn.execute(
                """
                SELECT m.points_balance,
                       (SELECT COALESCE(SUM(points), 0) FROM loyalty_ledgerentry e
                        WHERE e.member_id = m.id),
                       (SELECT COALESCE(SUM(remaining), 0) FROM loyalty_pointslot l
                        WHERE l.member_id = m.id) - m.points_debt
                FROM members_member m WHERE m.card_number = %s
                """,
                [card],
            ).fetchone()

    def run_gain(self, card, prefix):
        with psycopg.connect(self.dsn) as conn:
            return conn.execute(
                "SELECT COALESCE(SUM(p.earned_points - p.redeemed_points), 0), COUNT(*) "
                "FROM loyalty_purchase p JOIN members_member m ON m.id = p.member_id "
                "WHERE m.card_number = %s AND p.external_id LIKE %s",
                [card, prefix + "%"],
            ).fetchone()

    # -- cases --
    def _purchases(self, cards, headers, tag, redeem):
        def script(server, n):
            prefix = f"B{self.run_id}{tag}{TAGS[server]}{n}-"
            return purchase_script(
                SERVERS[server][2] + "/purchases", cards, headers, prefix, redeem
            )

        return script

    def cases(self, samples, key, session):
        """Each case's script takes (server, tag); receipt numbers carry run, case and tag."""
        auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        headers = lua_headers(auth)
        # The segment count first, before the purchase cases: see _segment_case.
        return [
            self._segment_case(samples, session),
            *self._purchase_cases(samples, headers),
            self._busiest_case(samples, headers),
            *self._lots_cases(headers),
            *self._lookup_cases(samples, headers),
            *self._page_cases(samples, session),
        ]

    def _purchase_cases(self, samples, headers):
        cases = []
        for kind, cards, redeem in (
            ("earn", samples["cards"], 0),
            ("redeem", samples["rich"], 10),
        ):
            for conns in (8, 32):
                cases.append(
                    {
                        "name": f"purchase {kind} c{conns}",
                        "servers": ["bare", "product", "drf"],
                        "connections": conns,
                        "targets": [("product_vs_drf", ">=", 0.9)]
                        + ([("p99_ms", "<", 60)] if conns == 8 else []),
                        "script": self._purchases(cards, headers, f"{kind[0]}{conns}", redeem),
                    }
                )
        return cases

    def _busiest_case(self, samples, headers):
        busy = samples["rich"][0]
        return {
            "name": "busiest customer c8",
            "servers": ["bare", "product", "drf"],
            "connections": 8,
            "busiest": busy,
            "receipts": lambda server, n: f"H{self.run_id}{TAGS[server]}{n}-",
            "script": lambda server, n: purchase_script(
                SERVERS[server][2] + "/purchases",
                [busy],
                headers,
                f"H{self.run_id}{TAGS[server]}{n}-",
                0,
            ),
        }

    def _lots_cases(self, headers):
        """One member holding ``lots`` open lots, eight connections buying for it: a fresh
        member for every server and round (``run_case``), as each run adds its earned lots."""
        cases = []
        for lots, redeem in BUSIEST_LOTS:
            kind = "redeem " if redeem else ""

            def receipts(server, n, lots=lots, redeem=redeem):
                # Receipt numbers of their own per case: a repeat would be answered as a replay.
                return f"L{self.run_id}{lots}{'r' if redeem else 'e'}{TAGS[server]}{n}-"

            cases.append(
                {
                    "name": f"busiest, {lots:,} open lots {kind}c8",
                    "servers": ["bare", "product", "drf"],
                    "connections": 8,
                    "lots": lots,
                    "targets": [("product_vs_drf", ">=", 0.9)],
                    "receipts": receipts,
                    "script": lambda server, n, card, redeem=redeem, receipts=receipts: (
                        purchase_script(
                            SERVERS[server][2] + "/purchases",
                            [card],
                            headers,
                            receipts(server, n),
                            redeem,
                        )
                    ),
                }
            )
        return cases

    def lot_members(self, lots, count):
        """``count`` members who each hold ``lots`` open lots (bench.lots), by card number."""
        out = subprocess.run(  # noqa: S603
            [sys.executable, "-m", "bench.lots", str(lots), str(count)],
            cwd=REPO,
            env=self.env(self.settings),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        cards = out.split()
        if len(cards) < count:
            raise RuntimeError(f"only {len(cards)} members could hold {lots} lots, not {count}")
        return cards

    def _lookup_cases(self, samples, headers):
        cards = samples["cards"]
        phones = [urllib.parse.quote(phone, safe="") for phone in samples["phones"]]
        return [
            {
                "name": name,
                "servers": ["bare", "product", "drf"],
                "connections": 8,
                "targets": [("product_vs_drf", ">=", 0.9), ("p99_ms", "<", 25)],
                "script": lambda server, n, paths=paths: get_script(
                    paths(SERVERS[server][2]), headers
                ),
            }
            for name, paths in (
                ("lookup by card c8", lambda prefix: [f"{prefix}/members/{c}" for c in cards]),
                (
                    "lookup by phone c8",
                    lambda prefix: [f"{prefix}/members?phone={p}" for p in phones],
                ),
            )
        ]

    def _page_cases(self, samples, session):
        """The back-office search (an htmx fragment), then full pages as a signed-in admin."""
        names = [urllib.parse.quote(name) for name in samples["names"]]
        cases = [
            _page_case(
                "back-office search by name c8", 8, 100,
                [f"/members/?q={name}" for name in names], session, fragment=True,
            )
        ]  # fmt: skip
        member_pages = [f"/members/{card}/" for card in samples["cards"][:500]]
        dashboards = [f"/analytics/?days={days}" for days in (30, 90, 365)] + [
            f"/analytics/?days=90&store={code}" for code in samples["store_codes"]
        ]
        # A busy back-office (8 people clicking at once) and a normal one (2).
        for conns in (8, 2):
            cases.append(_page_case(f"member page c{conns}", conns, 150, member_pages, session))
            cases.append(_page_case(f"program dashboard c{conns}", conns, 300, dashboards, session))
        return cases

    def _segment_case(self, samples, session):
        """The live count of the segment form (an htmx fragment), over segments a marketer builds.

        It runs before the purchase cases: purchase criteria read the nightly snapshot plus the
        receipts since it, and the purchase cases add about 150,000 receipts to one store
        within minutes: five days of the generated data's busiest month, all in one day
        (docs/benchmarks.md gives the count both ways).
        """
        paths = [f"/campaigns/segments/new/?{query}" for query in segment_queries(samples)]
        return _page_case("segment count c1", 1, 500, paths, session, fragment=True)

    def run(self):
        args = self.args
        samples = self.samples()
        key, session = self.credentials()
        results = {"machine": machine(), "settings": vars(args), "cases": []}
        self.start_servers()
        try:
            for case in self.cases(samples, key, session):
                if args.only and not any(word in case["name"] for word in args.only):
                    continue
                results["cases"].append(self.run_case(case))
            results["peak_worker_rss_mb"] = self.peak_worker_rss()
            print(f"  peak RSS of a gunicorn worker (MB): {results['peak_worker_rss_mb']}")
        finally:
            self.stop_servers()
        return results

    def run_case(self, case):
        """Every round over the case's servers (the order flips each round), then the medians.

        A busiest-member case (``lots``) gets a fresh member for every server and round, holding
        that many open lots, and no warm-up (the servers are warm from the cases before)."""
        args = self.args
        servers = case_servers(case["servers"], "before" in self.apps)
        cards = []
        if "lots" in case:
            cards = self.lot_members(case["lots"], len(servers) * args.runs)
        runs = {server: [] for server in servers}
        for round_no in range(args.runs):
            order = servers if round_no % 2 == 0 else servers[::-1]
            for server in order:
                this = case
                if cards:
                    card = cards.pop()
                    this = dict(
                        case,
                        busiest=card,
                        script=lambda server, n, card=card: case["script"](server, n, card),
                    )
                elif round_no == 0 and args.warmup:
                    self.wrk(
                        server,
                        case["script"](server, f"w{round_no}"),
                        case["connections"],
                        args.warmup,
                    )
                outcome = self.measure(this, server, f"r{round_no}")
                if "busiest" in this:
                    outcome["member"] = this["busiest"]
                runs[server].append(outcome)
                print(f"  {case['name']:<32} {server:<8} {summary(outcome)}", flush=True)
        return aggregate(case, runs)

    def measure(self, case, server, tag):
        """One measured wrk run; for the busiest-customer case, whether the balance is exact."""
        before = self.member_state(case["busiest"]) if "busiest" in case else None
        outcome = self.wrk(
            server, case["script"](server, tag), case["connections"], self.args.duration
        )
        if before is not None:
            after = self.member_state(case["busiest"])
            prefix = case["receipts"](server, tag)
            gain, _count = self.run_gain(case["busiest"], prefix)
            outcome["balance_exact"] = after[0] == after[1] == after[2] == before[0] + gain
        return outcome

    def peak_worker_rss(self):
        """The largest high-water mark (VmHWM) among each server's workers, in MB."""
        peaks = {}
        for name, process in self.servers.items():
            marks = []
            for pid in children(process.pid):
                try:
                    with open(f"/proc/{pid}/status") as handle:
                        marks += [int(line.split()[1]) for line in handle if "VmHWM" in line]
                except OSError:
                    continue
            peaks[name] = round(max(marks) / 1024, 1) if marks else None
        return peaks


def wrk_result(output):
    """The JSON line the Lua ``done`` hook prints."""
    line = next((x for x in output.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result: {output}")
    return json.loads(line[len("WRKJSON ") :])


def throughput(result):
    """Requests answered 2xx per second, latency percentiles (ms), errors and statuses."""
    seconds = result["duration_us"] / 1e6
    ok = sum(n for code, n in result["statuses"].items() if code.startswith("2"))
    return {
        "rps": round(ok / seconds, 1),
        "p50_ms": result["p50"] / 1000,
        "p95_ms": result["p95"] / 1000,
        "p99_ms": result["p99"] / 1000,
        "errors": result["requests"] - ok + result["socket_errors"],
        "statuses": result["statuses"],
    }


def _page_case(name, connections, p95_ms, paths, session, *, fragment=False):
    """A case that GETs back-office pages on the product alone, signed in, with a p95 target."""
    headers = {"Cookie": f"sessionid={session}", "Accept-Language": "ru"}
    if fragment:
        headers = {"Cookie": f"sessionid={session}", "HX-Request": "true", "Accept-Language": "ru"}
    headers = lua_headers(headers)
    return {
        "name": name,
        "servers": ["product"],
        "connections": connections,
        "targets": [("p95_ms", "<", p95_ms)],
        "script": lambda server, n: get_script(paths, headers),
    }


def case_servers(servers, compare):
    """The servers a case runs on: with a tree to compare, "before" next to the product."""
    if not compare or "product" not in servers:
        return list(servers)
    at = servers.index("product") + 1
    return [*servers[:at], "before", *servers[at:]]


# Each server's ratios: to both floors, and the product to the tree it is compared with.
RATIOS = (
    ("product", "bare"), ("product", "drf"), ("product", "before"),
    ("before", "bare"), ("before", "drf"), ("drf", "bare"),
)  # fmt: skip


def ratio(numerator, denominator):
    """numerator ÷ denominator to three places, None without a denominator."""
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


def ratios(rps):
    """``{"product_vs_bare": ..., ...}`` for every pair of RATIOS whose servers both ran."""
    return {
        f"{a}_vs_{b}": ratio(rps[a], rps[b]) for a, b in RATIOS if a in rps and b in rps and rps[b]
    }


def cpu_ms_per_request(outcome):
    """Milliseconds of CPU one answered request cost: the server's processes (gunicorn master
    and workers) and the PostgreSQL backends of the database, over the requests answered."""
    if not outcome["rps"]:
        return None
    cpu = outcome["cpu"]
    return round((cpu["server"] + cpu["postgres"]) * 1000 / outcome["rps"], 3)


def summary(outcome):
    cpu = outcome["cpu"]
    return (
        f"{outcome['rps']:>8.1f} rps  p99 {outcome['p99_ms']:>7.1f} ms  "
        f"cpu/req {cpu_ms_per_request(outcome)} ms  "
        f"err {outcome['errors']}  dl {outcome['deadlocks']}  cpu srv {cpu['server']} "
        f"pg {cpu['postgres']} wrk {cpu['wrk']} other {cpu['other']} steal {cpu['steal']}"
        f"  ckpt {outcome['checkpoints']}"
    )


def aggregate(case, runs):
    entry = {"case": case["name"], "connections": case["connections"], "servers": {}}
    for server, outcomes in runs.items():
        entry["servers"][server] = {
            "rps": statistics.median(o["rps"] for o in outcomes),
            "p50_ms": statistics.median(o["p50_ms"] for o in outcomes),
            "p95_ms": statistics.median(o["p95_ms"] for o in outcomes),
            "p99_ms": statistics.median(o["p99_ms"] for o in outcomes),
            "errors": sum(o["errors"] for o in outcomes),
            "deadlocks": sum(o["deadlocks"] for o in outcomes),
            "cpu": {
                part: round(statistics.median(o["cpu"][part] for o in outcomes), 2)
                for part in outcomes[0]["cpu"]
            },
            "cpu_ms_per_request": median_of(cpu_ms_per_request(o) for o in outcomes),
            "runs": outcomes,
        }
        if any("balance_exact" in o for o in outcomes):
            entry["servers"][server]["balance_exact"] = all(o["balance_exact"] for o in outcomes)
    entry.update(ratios({name: server["rps"] for name, server in entry["servers"].items()}))
    entry["verdict"] = verdict(case, entry)
    return entry


def median_of(values):
    values = [value for value in values if value is not None]
    return round(statistics.median(values), 3) if values else None


def verdict(case, entry):
    """'met' or what missed: every target of the case, and no error or deadlock."""
    product = entry["servers"].get("product", {})
    missed = []
    for metric, op, bound in case.get("targets", []):
        value = entry.get(metric, product.get(metric))
        if value is None or (value < bound if op == ">=" else value >= bound):
            missed.append(f"{metric} {value} (target {op} {bound})")
    if product.get("errors") or product.get("deadlocks"):
        missed.append(f"{product.get('errors')} errors, {product.get('deadlocks')} deadlocks")
    if product.get("balance_exact") is False:
        missed.append("balance wrong")
    return "met" if not missed else "MISSED: " + "; ".join(missed)


def machine():
    with open("/proc/cpuinfo") as handle:
        model = next((line.split(":", 1)[1].strip() for line in handle if "model name" in line), "")
    with psycopg.connect(
        os.environ.get("DATABASE_URL", "").replace("postgres://", "postgresql://", 1)
    ) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        counts = {
            table: conn.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE relname = %s", [table]
            ).fetchone()[0]
            for table in ("members_member", "loyalty_purchase", "loyalty_ledgerentry")
        }
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "postgresql": version,
        "rows": counts,
        "load_average_at_start": os.getloadavg(),
    }


def table_rows(entry):
    """One line per server of a case: rps, p50/p99, ÷bare, ÷DRF, ÷before, CPU ms a request."""
    servers = entry["servers"]
    has_floor = any(floor in servers for floor in FLOORS)
    rows = []
    for name, server in servers.items():

        def against(other, name=name):
            if other == name:
                return "-"
            if other in FLOORS and not has_floor:
                return "no floor"
            value = entry.get(f"{name}_vs_{other}")
            return "-" if value is None else f"{value:.2f}"

        extra = ""
        if "balance_exact" in server:
            extra = "  balance exact" if server["balance_exact"] else "  BALANCE WRONG"
        cpu = server["cpu"]
        cpu_ms = server.get("cpu_ms_per_request")
        rows.append(
            f"{entry['case']:<40} {name:<8} {server['rps']:>8.0f} {server['p50_ms']:>7.1f} "
            f"{server['p99_ms']:>7.1f} {against('bare'):>8} {against('drf'):>8} "
            f"{against('before'):>7} {'-' if cpu_ms is None else f'{cpu_ms:.2f}':>7} "
            f"{server['errors']:>4} {server['deadlocks']:>3}  "
            f"{cpu.get('server')}/{cpu.get('postgres')}/{cpu.get('wrk')}/{cpu.get('other')}{extra}"
        )
    return rows


def print_table(results):
    print()
    print(
        f"{'case':<40} {'server':<8} {'rps':>8} {'p50 ms':>7} {'p99 ms':>7} {'÷bare':>8} "
        f"{'÷drf':>8} {'÷before':>7} {'cpu ms':>7} {'err':>4} {'dl':>3}  "
        "cores srv/pg/wrk/other"
    )
    for entry in results["cases"]:
        for row in table_rows(entry):
            print(row)
        print(f"{'':<40} {entry['verdict']}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument(
        "--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
    )
    parser.add_argument("--product-dir", default=str(REPO))
    parser.add_argument(
        "--compare-dir",
        help="another tree of the product (e.g. `git worktree add /tmp/before REV`), run as a "
        "fourth server, 'before', in the same rounds and reported as product ÷ before",
    )
    parser.add_argument(
        "--product-module",
        help="the product's WSGI module (default: loyalty.project.wsgi if the product dir has "
        "it, else loyalty.wsgi)",
    )
    parser.add_argument(
        "--product-settings",
        help="the product's settings module (default: found like --product-module)",
    )
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers per server")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per server")
    parser.add_argument("--runs", type=int, default=3, help="rounds (the median is reported)")
    parser.add_argument("--sample", type=int, default=2000, help="members the scripts draw from")
    parser.add_argument("--only", nargs="*", help="run only cases whose name contains a word")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "/usr/bin/wrk")
    parser.add_argument("--out", default=str(REPO / "var" / "bench" / "results.json"))
    args = parser.parse_args()
    if not args.database_url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("Set DATABASE_URL to the PostgreSQL database with generated data")
    os.environ["DATABASE_URL"] = args.database_url
    results = Bench(args).run()
    Path(args.out).write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print_table(results)
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
