from tests.backoffice.conftest import make_member  # noqa: F401  (the same fixture)
