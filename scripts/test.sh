#!/usr/bin/env bash
# The test command (`make test`): PostgreSQL + Redis + RabbitMQ, the whole suite, and the drift checks.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh
VENV=${VENV:-.venv}
PY="$VENV/bin/python"

ensure_postgres
ensure_redis
# The fleet scheduler's end-to-end tests run on RabbitMQ too (a vhost of their own).
ensure_rabbitmq || echo "== RabbitMQ missing: its end-to-end tests will be skipped"
# The browser test drives Debian's chromium (no browser download); without it that test is skipped.
command -v chromium >/dev/null || apt_install chromium || echo "== chromium missing: the browser test will be skipped"

# Tests run against PostgreSQL and Redis unless the caller chose others.
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/luffy_admin}
export CELERY_BROKER_URL=${CELERY_BROKER_URL:-redis://127.0.0.1:6379/14}
export LUFFY_VAR_DIR=${LUFFY_VAR_DIR:-$PWD/var/test}

echo "== lint and format (ruff)"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .

echo "== migrations match the models"
# On an in-memory database: the check compares models with migrations, no data (the tests'
# databases are pytest-django's, and the project's own may not exist yet).
DATABASE_URL=sqlite://:memory: "$PY" manage.py makemigrations --check --dry-run

echo "== deployment checks in production mode"
DJANGO_ENV=production DJANGO_SECRET_KEY="$("$PY" -c 'import secrets; print(secrets.token_urlsafe(50))')" \
  DJANGO_ALLOWED_HOSTS=luffy.example.com "$PY" manage.py check --deploy --fail-level WARNING

if command -v docker-compose >/dev/null; then
  echo "== docker-compose.yml is valid"
  DJANGO_SECRET_KEY=validation-only docker-compose config -q
else
  echo "== docker-compose.yml not validated: docker-compose is not installed (apt-get install docker-compose)"
fi

# Two pytest-xdist workers, whole files each (a module's beat/worker stack starts once, on one
# worker): most end-to-end time is waiting on real clocks, which overlaps well even on two cores.
# schedules/tests/workers.py gives each worker its own Redis database and var folder; -p loads it
# before the settings are read. PYTEST_WORKERS=0 (or ARGS="-n 0") runs in this one process.
echo "== test suite"
exec "$PY" -m pytest -p schedules.tests.workers -n "${PYTEST_WORKERS:-2}" --dist loadfile "$@"
