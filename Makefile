# The few verbs people type. `make run` and `make test` do all set-up on a fresh machine that
# has only Python 3.11: uv comes from PyPI into .tools/, everything else from uv.lock into .venv/.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
# The interpreter itself, not a launcher: uv cannot tell that .venv was made from a pyenv shim or
# a symlink, and would delete and rebuild .venv on every sync.
PYTHON_BIN := $(shell $(PYTHON) -c "import sys; print(sys.executable)")
UV := .tools/bin/uv
VENV_PY := .venv/bin/python
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := .venv
HOST ?= 127.0.0.1
PORT ?= 8000
# The address in links sent to members (survey links): the demo's own port unless set.
SITE_URL ?= http://localhost:$(PORT)
export SITE_URL

.PHONY: run test install install-dev lint format messages bench soak check-deploy clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet "uv==0.13.9"

# --inexact: `make run` after `make test` keeps the test tools; `make test` adds them once.
install: $(UV)
	$(UV) sync --frozen --no-dev --inexact --python $(PYTHON_BIN)

install-dev: $(UV)
	$(UV) sync --frozen --python $(PYTHON_BIN)

# Embedded mode: SQLite and a server-less Celery broker under var/, demo data, web + worker + beat.
run: install
	@mkdir -p var
	@test -s var/secret_key || $(VENV_PY) -c "import secrets; print(secrets.token_urlsafe(50))" > var/secret_key
	SECRET_KEY="$$(cat var/secret_key)" $(VENV_PY) manage.py migrate --noinput
	SECRET_KEY="$$(cat var/secret_key)" $(VENV_PY) manage.py collectstatic --noinput -v 0
	SECRET_KEY="$$(cat var/secret_key)" $(VENV_PY) manage.py seed_demo
	@# exec: make's SIGTERM and Ctrl-C reach `start` itself, which stops web, worker and beat.
	SECRET_KEY="$$(cat var/secret_key)" SECURE_SSL_REDIRECT=false SESSION_COOKIE_SECURE=false \
		SECURE_HSTS_SECONDS=0 exec $(VENV_PY) manage.py start --host $(HOST) --port $(PORT)

# The whole suite, lint included. Uses DATABASE_URL / REDIS_URL when set (CI sets both).
test: install-dev
	bash scripts/ensure-chromium
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

lint: install-dev
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

format: install-dev
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

messages: install-dev
	DEBUG=true $(VENV_PY) manage.py makemessages -l ru -l en --no-obsolete --ignore=.venv --ignore=.tools --ignore=var
	DEBUG=true $(VENV_PY) manage.py compilemessages --ignore=.venv --ignore=.tools

check-deploy: install
	SECRET_KEY="$$($(VENV_PY) -c 'import secrets; print(secrets.token_urlsafe(50))')" \
		ALLOWED_HOSTS=loyalty.example.com $(VENV_PY) manage.py check --deploy --fail-level WARNING

# The product against its two floors (docs/benchmarks.md): PostgreSQL with generated data, e.g.
#   DATABASE_URL=$(BENCH_DATABASE_URL) .venv/bin/python manage.py generate_data \
#       --members 100000 --purchases 1000000 --seed 1
# BENCH_ARGS passes options to bench/run.py (--duration, --runs, --only, --product-dir,
# --compare-dir DIR: the product of another tree as a fourth server, "before").
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/bench
bench:
	DATABASE_URL=$(BENCH_DATABASE_URL) $(VENV_PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf .venv .tools var

# Mixed API load against a real gunicorn, then check_ledger (docs/reliability.md). Needs DATABASE_URL.
soak: install-dev
	SECRET_KEY=soak $(VENV_PY) -m bench.soak --duration 180 --concurrency 8
