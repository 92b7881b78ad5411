"""Fixtures every test may use: the demo stores, one person per role, clients signed in as them,
and a real Chromium driven by Playwright.

The test environment itself (TESTING, SECRET_KEY, no DEBUG) is set in tests/settings.py, because
pytest-django reads the settings before this file is imported.
"""

import os

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.test import Client

from loyalty import roles
from loyalty.defaults import install_default_program
from loyalty.management.commands.seed_demo import DEMO_PASSWORD, seed_stores
from loyalty.models import ProgramSettings, Store, Tier, User

pytest_plugins = ["tests.fixtures_api"]

# Everyone the role/URL matrix and the browser tests act as: persona -> fixture name.
PERSONA_FIXTURES = {
    "anonymous": None,
    "admin": "admin_user_",
    "manager": "manager",
    "support": "support",
    "marketer": "marketer",
}
PERSONAS = tuple(PERSONA_FIXTURES)
ROLE_PERSONAS = PERSONAS[1:]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


@pytest.fixture(autouse=True)
def _fresh_rules_cache():
    """Each test starts with the program rules read from its own database, not a cache."""
    from loyalty.models.program import clear_rules_cache

    clear_rules_cache()
    yield
    clear_rules_cache()


def pytest_configure(config):
    if not settings.TESTING:
        raise pytest.UsageError(
            "Django settings were loaded without TESTING; run the suite with "
            "DJANGO_SETTINGS_MODULE=tests.settings (the default in pyproject.toml)."
        )
    _let_sqlite_flush_append_only_tables()


def _let_sqlite_flush_append_only_tables():
    """Let a transactional test's flush empty the append-only tables on SQLite.

    A transactional test (live_server, a real worker) ends by flushing every table. PostgreSQL
    flushes with TRUNCATE, which the append-only triggers (loyalty migration 0005) do not see;
    SQLite flushes with DELETE, which they refuse, and every later flush fails too. So on SQLite
    the flush sets the triggers aside and puts them back, in the flush's own transaction. Only
    test flushes go through here.
    """
    from django.db import transaction
    from django.db.backends.sqlite3.base import DatabaseWrapper

    operations = DatabaseWrapper.ops_class
    flush = operations.execute_sql_flush

    def execute_sql_flush(self, sql_list):
        with transaction.atomic(using=self.connection.alias):
            with self.connection.cursor() as cursor:
                cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
                triggers = cursor.fetchall()
                for name, _sql in triggers:
                    cursor.execute(f'DROP TRIGGER "{name}"')
            flush(self, sql_list)
            with self.connection.cursor() as cursor:
                for _name, sql in triggers:
                    cursor.execute(sql)

    operations.execute_sql_flush = execute_sql_flush


def ensure_role(role):
    """The role's group with its permissions from loyalty.roles.

    The data migration makes the groups, but a transactional test (live_server, a real worker)
    empties every table when it ends, so fixtures must not count on migration data.
    """
    group, _created = Group.objects.get_or_create(name=role)
    wanted = set(roles.ROLE_CAPABILITIES[role])
    have = set(group.permissions.values_list("codename", flat=True))
    if have != wanted:
        group.permissions.set(
            Permission.objects.filter(
                content_type__app_label="loyalty",
                content_type__model="capability",
                codename__in=wanted,
            )
        )
    return group


@pytest.fixture
def stores(db):
    """The demo stores (MSK-01, MSK-02, SPB-01, PARTNER-01), by code, and the default program.

    A transactional test empties every table when it ends, the migration's program included.
    """
    install_default_program(ProgramSettings, Tier)
    seed_stores()
    return {store.code: store for store in Store.objects.all()}


@pytest.fixture
def make_staff(db, stores):
    """Make a staff user in a role: ``make_staff("anna", roles.STORE_MANAGER, ["SPB-01"])``.

    The password is the demo password (``DEMO_PASSWORD``), so browser tests can sign in.
    """

    def make(username, role, store_codes=(), **fields):
        is_admin = role == roles.ADMINISTRATOR
        user, _created = User.objects.update_or_create(
            username=username,
            defaults={
                "first_name": username.capitalize(),
                "email": f"{username}@example.com",
                "is_staff": is_admin,
                "is_superuser": is_admin,
                **fields,
            },
        )
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["password"])
        user.groups.set([ensure_role(role)])
        user.stores.set([stores[code] for code in store_codes])
        return user

    return make


@pytest.fixture
def admin_user_(make_staff):
    """The administrator (a superuser, as in the demo data)."""
    return make_staff("admin", roles.ADMINISTRATOR)


@pytest.fixture
def manager(make_staff):
    """The store manager of MSK-01."""
    return make_staff("manager", roles.STORE_MANAGER, ["MSK-01"])


@pytest.fixture
def manager_spb(make_staff):
    """The store manager of SPB-01 (a manager who must not see MSK-01's members)."""
    return make_staff("manager_spb", roles.STORE_MANAGER, ["SPB-01"])


@pytest.fixture
def support(make_staff):
    return make_staff("support", roles.SUPPORT)


@pytest.fixture
def marketer(make_staff):
    return make_staff("marketer", roles.MARKETER)


@pytest.fixture
def persona_user(request):
    """The user behind a persona name ("admin", "manager", ...), or None for "anonymous"."""

    def get(persona):
        fixture = PERSONA_FIXTURES[persona]
        return None if fixture is None else request.getfixturevalue(fixture)

    return get


@pytest.fixture
def client_as(db, persona_user):
    """A fresh Django test client signed in as a persona: ``client_as("support")``."""

    def make(persona):
        client = Client()
        user = persona_user(persona)
        if user is not None:
            client.force_login(user)
        return client

    return make


# --- Celery ----------------------------------------------------------------------------------


@pytest.fixture
def celery_worker(transactional_db, tmp_path):
    """Start real Celery workers on the test database: ``worker = celery_worker()``.

    By default a worker listens on a queue of its own (``worker.queues[0]``: send with
    ``task.apply_async(queue=...)``), so nothing else takes its messages; pass
    ``queues=[settings.CELERY_TASK_DEFAULT_QUEUE]`` for tasks sent with ``.delay()``
    (per xdist worker in tests). Other options: ``pool``, ``concurrency``, ``env``;
    ``keep_messages=True`` leaves what the queues hold (a worker taking over from one that was
    killed). Every worker is killed, and its queues deleted, after the test.
    """
    from django.db import connection

    from loyalty.project.celery import app
    from tests.helpers import CeleryWorker, database_url, delete_queues

    started = []

    def start(queues=None, *, keep_messages=False, **options):
        if queues and not keep_messages:
            # Whatever an earlier test left in these queues is not this test's work.
            delete_queues(app, queues)
        worker = CeleryWorker(
            database_url=database_url(connection),
            queues=queues,
            log_path=tmp_path / f"worker-{len(started)}.log",
            **options,
        )
        started.append(worker)
        return worker.wait_until_ready()

    yield start
    for worker in started:
        worker.kill()
    delete_queues(app, sorted({queue for worker in started for queue in worker.queues}))


@pytest.fixture
def broker_down():
    """Point this process's Celery at a broker where nothing listens (port 1), as when Redis is
    down; returns a function that brings the suite's broker back (also done after the test)."""
    from loyalty.project.celery import app

    saved = app.conf.broker_url, app._pool, app.amqp._producer_pool

    def come_back():
        app.conf.broker_url, app._pool, app.amqp._producer_pool = saved

    app.conf.broker_url = "redis://127.0.0.1:1/0"
    app._pool = app.amqp._producer_pool = None  # built again from the dead URL on first use
    yield come_back
    come_back()


# --- Browser ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium under Playwright (Playwright's own browser downloads fail here)."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on the main thread for as long as it runs, and
    # Django refuses database calls from a thread with a running loop unless told otherwise.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def browser_locale():
    """The language the browser asks for (Accept-Language); override in a test module."""
    return "en-US"


@pytest.fixture
def page(browser, live_server, browser_locale):
    """A new browser tab, with its own cookies, on the live server (``page.goto("/login/")``)."""
    context = browser.new_context(base_url=live_server.url, locale=browser_locale)
    context.set_default_timeout(10_000)
    tab = context.new_page()
    yield tab
    context.close()
