"""bench/run.py finds the product's WSGI and settings modules in the tree it is pointed at."""

from pathlib import Path

from bench.run import Bench, product_modules


def test_product_modules_follow_the_tree_layout(tmp_path):
    assert product_modules(tmp_path) == ("loyalty.wsgi", "loyalty.settings")
    (tmp_path / "loyalty").mkdir()
    (tmp_path / "loyalty" / "wsgi.py").write_text("")
    assert product_modules(tmp_path) == ("loyalty.wsgi", "loyalty.settings")
    (tmp_path / "loyalty" / "project").mkdir()
    (tmp_path / "loyalty" / "project" / "wsgi.py").write_text("")
    assert product_modules(tmp_path) == ("loyalty.project.wsgi", "loyalty.project.settings")


def test_product_modules_given_outright_win(tmp_path):
    assert product_modules(tmp_path, "old.wsgi", "old.settings") == ("old.wsgi", "old.settings")
    assert product_modules(tmp_path, "old.wsgi") == ("old.wsgi", "loyalty.settings")


def test_the_product_server_runs_the_found_modules(tmp_path):
    class Args:
        database_url = "postgres://postgres@127.0.0.1:5432/bench"
        product_dir = str(Path(__file__).resolve().parents[2])
        out = str(tmp_path / "results.json")
        product_module = None
        product_settings = None

    bench = Bench(Args())
    module, settings = product_modules(bench.product_dir)
    assert bench.apps["product"] == (f"{module}:application", settings, "/api/v1")
    assert bench.settings == settings
    assert set(bench.apps) == {"bare", "drf", "product"}
