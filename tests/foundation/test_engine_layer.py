"""The engine (loyalty/services, loyalty/models) is the bottom layer: it imports no app above it.

Campaigns, surveys and analytics sit above the engine; what the till needs from them comes in
through a registered source (``loyalty.engine.multipliers``), never through an import.
(messaging's outbox is still imported by memberships and referrals: issue 17 moves it down.)
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENGINE = [ROOT / "loyalty" / "services", ROOT / "loyalty" / "models"]
ABOVE = ("campaigns", "surveys", "analytics")


def imported_modules(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def upward_imports(path):
    return [module for module in imported_modules(path) if module.split(".")[0] in ABOVE]


def test_no_engine_module_imports_a_layer_above_it():
    paths = [path for folder in ENGINE for path in folder.rglob("*.py")]
    assert paths
    found = [f"{path.relative_to(ROOT)}: {m}" for path in paths for m in upward_imports(path)]
    assert found == []


@pytest.mark.parametrize(
    ("line", "found"),
    [
        ("from campaigns.queries import x", ["campaigns.queries"]),
        ("    import surveys.models", ["surveys.models"]),
        ("from loyalty.models import Coupon", []),
        ("from .coupons import Coupon", []),
    ],
)
def test_the_check_sees_an_upward_import(tmp_path, line, found):
    probe = tmp_path / "probe.py"
    source = f"def f():\n{line}\n" if line.startswith(" ") else line + "\n"
    probe.write_text(source, encoding="utf-8")
    assert upward_imports(probe) == found
