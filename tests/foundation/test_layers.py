"""Layers run one way (docs/architecture.md, "Layers"): no module imports a layer above it.

The check reads every import statement of the product's code (imports inside functions too) and
places both ends in a layer. It also holds the three extra rules (services never import tasks or
jobs; a view module never imports another app's view module; the four programme apps never import
each other's services) and the homes of the rules that must be written once.
"""

import ast
import fnmatch
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = [
    "loyalty",
    "members",
    "campaigns",
    "surveys",
    "messaging",
    "analytics",
    "webhooks",
    "bench",
]

DATA, ENGINE, MEMBERS, PROGRAMME, JOBS, FACES, PROJECT = range(7)
LAYER_NAMES = ["data", "engine", "members", "programme", "jobs", "faces", "project"]

# (layer, module patterns): the first pattern that matches wins, so the specific ones come first.
LAYERS = [
    (
        DATA,
        [
            "*.models",
            "*.models.*",
            "loyalty.defaults",
            "loyalty.roles",
            "surveys.defaults",
            "messaging.defaults",
        ],
    ),
    (ENGINE, ["loyalty.engine", "loyalty.engine.*"]),
    (
        MEMBERS,
        [
            "members.services",
            "members.queries",
            "members.imports",
            "members.import_forms",
            "members.segments",
            "members.personal_data",
            "members.self_service",
        ],
    ),
    (
        PROGRAMME,
        [
            "campaigns.services",
            "campaigns.queries",
            "surveys.services",
            "surveys.queries",
            "surveys.jobs",
            "surveys.messages",
            "surveys.datagen",
            "messaging.services",
            "messaging.sms",
            "analytics.jobs",
            "analytics.queries",
            "analytics.clv",
            "analytics.calibration",
            "analytics.liability",
            "analytics.effect",
            "analytics.matching",
            "analytics.roi",
            "analytics.sql",
            "analytics.whatif",
            "webhooks.services",
            "webhooks.queries",
        ],
    ),
    (JOBS, ["loyalty.jobs", "loyalty.jobs.runner"]),
    (
        FACES,
        [
            "loyalty.web",
            "loyalty.web.*",
            "loyalty.api",
            "loyalty.api.*",
            "loyalty.tasks",
            "*.management",
            "*.management.*",
            "*.templatetags",
            "*.templatetags.*",
            "*.apps",
            "*views",
            "*.api",
            "*forms",
            "*.filters",
            "*.tasks",
            "*.admin",
            "*.urls",
            # faces not yet moved into loyalty/web/ (issue 17 moves them)
            "loyalty.web.access",
            "loyalty.web.taskqueue",
            "loyalty.web.middleware",
            "loyalty.web.sessions",
            "loyalty.web.context_processors",
            "loyalty.web.health",
            "loyalty.engine.cache",
        ],
    ),
    (
        PROJECT,
        [
            "loyalty.project",
            "loyalty.project.*",
            "loyalty",
            "bench",
            "bench.*",
            "analytics",
            "campaigns",
            "members",
            "messaging",
            "surveys",
            "webhooks",
        ],
    ),
]

PROJECT_COMMANDS = {
    f"loyalty.management.commands.{name}"
    for name in ["generate_data", "seed_demo", "bench_jobs", "bench_celery", "start"]
}

# The four programme apps: each may use the engine and members, never another's services.
PROGRAMME_APPS = {"campaigns", "surveys", "messaging", "analytics"}

# Violations that exist today, each "source -> target (rule)". The list may only shrink: the test
# also fails when a listed violation no longer occurs, so whoever removes one deletes its line.
KNOWN = set()


def layer_of(module):
    if fnmatch.fnmatchcase(module, "loyalty.management.commands.*") and module in PROJECT_COMMANDS:
        return PROJECT
    for layer, patterns in LAYERS:
        if any(fnmatch.fnmatchcase(module, pattern) for pattern in patterns):
            return layer
    return None


def module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def product_files():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


@cache
def known_modules():
    return {module_name(path) for path in product_files()}


def imports_of(path):
    """(line, imported module) for every import in a file, relative ones resolved."""
    source = module_name(path)
    package = source if path.name == "__init__.py" else source.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield node.lineno, submodule if submodule in known_modules() else base


def is_view(module):
    last = module.rpartition(".")[2]
    return "views" in last or last == "api" or module in {"loyalty.api.urls"}


def is_service(module):
    return module.endswith(".services") or module.startswith("loyalty.engine.")


def is_task_or_job(module):
    last = module.rpartition(".")[2]
    return last in {"tasks", "jobs"} or module.startswith("loyalty.jobs")


def app_of(module):
    return module.split(".")[0]


def violations_of(source, imported):
    """The rules one import breaks (empty when it is allowed)."""
    ours = imported.split(".")[0] in PACKAGES and imported in known_modules()
    if not ours:
        return []
    found = []
    source_layer, target_layer = layer_of(source), layer_of(imported)
    if source_layer is not None and target_layer is not None and target_layer > source_layer:
        found.append(f"upward {LAYER_NAMES[source_layer]} -> {LAYER_NAMES[target_layer]}")
    if is_service(source) and is_task_or_job(imported):
        found.append("a service imports a task or job")
    if is_view(source) and is_view(imported) and app_of(source) != app_of(imported):
        found.append("a view imports another app's view")
    if (
        source_layer == PROGRAMME
        and target_layer == PROGRAMME
        and app_of(source) != app_of(imported)
        and app_of(source) in PROGRAMME_APPS
    ):
        found.append("a programme app imports another's")
    return found


def import_violations():
    found = {}
    for path in product_files():
        source = module_name(path)
        for line, imported in imports_of(path):
            for rule in violations_of(source, imported):
                found[f"{source} -> {imported} ({rule})"] = f"{path.relative_to(ROOT)}:{line}"
    return found


def test_every_module_has_a_layer():
    unplaced = sorted(m for m in known_modules() if layer_of(m) is None)
    assert unplaced == [], "place these modules in a layer in LAYERS (and docs/architecture.md)"


def test_no_module_imports_upward():
    found = import_violations()
    new = {key: where for key, where in found.items() if key not in KNOWN}
    gone = sorted(KNOWN - set(found))
    assert new == {}, "imports that run against the layers (file:line)"
    assert gone == [], "fixed: delete these lines from KNOWN"


# Rules written once: a text pattern and the only files allowed to hold it. The benchmark floors
# (bench_jobs, bench/floor_wsgi.py) hold hand-written statements on purpose: they are what the
# product is measured against.
FLOORS = {"loyalty/management/commands/bench_jobs.py", "bench/floor_wsgi.py"}
HOMES = {
    "connection.vendor": {
        "loyalty/engine/db.py",
        "loyalty/web/health.py",
        "loyalty/management/commands/bench_celery.py",
    },
    "is_postgres(": {"loyalty/engine/db.py"},
    "INSERT INTO messaging_outbox": {"loyalty/engine/outbox.py"},
    "INSERT INTO loyalty_ledgerentry": {"loyalty/engine/ledger.py"},
    "INSERT INTO loyalty_pointslot": {"loyalty/engine/ledger.py"},
    ".quantize(": {"loyalty/engine/money.py"},
    "def luhn": {"loyalty/engine/cards.py"},
}
KNOWN_HOMES = set()  # the same: may only shrink


def home_violations():
    found = set()
    for path in product_files():
        text = path.read_text(encoding="utf-8")
        relative = str(path.relative_to(ROOT))
        for pattern, homes in HOMES.items():
            if relative not in homes | FLOORS and re.search(re.escape(pattern), text):
                found.add(f"{pattern} in {relative}")
    return found


def test_each_rule_has_one_home():
    found = home_violations()
    assert sorted(found - KNOWN_HOMES) == [], "write the rule in its home and call it"
    assert sorted(KNOWN_HOMES - found) == [], "fixed: delete these lines from KNOWN_HOMES"


@pytest.mark.parametrize(
    ("source", "imported", "rule"),
    [
        ("loyalty.engine.ledger", "campaigns.services", "upward engine -> programme"),
        ("loyalty.engine.ledger", "loyalty.jobs.runner", "upward engine -> jobs"),
        ("members.services", "members.views", "upward members -> faces"),
        ("campaigns.services", "campaigns.tasks", "a service imports a task or job"),
        ("surveys.complaint_views", "members.views", "a view imports another app's view"),
        ("surveys.services", "campaigns.queries", "a programme app imports another's"),
    ],
)
def test_the_check_sees_each_kind_of_violation(source, imported, rule):
    assert rule in violations_of(source, imported)


@pytest.mark.parametrize(
    ("source", "imported"),
    [
        ("loyalty.engine.ledger", "loyalty.models"),
        ("campaigns.services", "loyalty.engine.ledger"),
        ("members.views", "members.services"),
        ("loyalty.api.views", "loyalty.engine.purchases"),
        ("campaigns.views", "campaigns.views"),
    ],
)
def test_the_check_allows_imports_downward(source, imported):
    assert violations_of(source, imported) == []


def test_relative_imports_and_imports_inside_functions_are_read(tmp_path, monkeypatch):
    package = tmp_path / "loyalty" / "engine"
    package.mkdir(parents=True)
    probe = package / "probe.py"
    probe.write_text("def f():\n    from ..jobs import runner\n", encoding="utf-8")
    known_modules()  # the product's modules, read before ROOT moves to the probe's folder
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    assert list(imports_of(probe)) == [(2, "loyalty.jobs.runner")]


if __name__ == "__main__":  # print today's violations, to fill KNOWN while the layers are built
    for key, where in sorted(import_violations().items()):
        print(f"{where}  {key}")
    for key in sorted(home_violations()):
        print(key)
