#!/usr/bin/env bash
# The run command (`make run`): admin + API on http://127.0.0.1:8000, beat and the demo worker.
# Uses DATABASE_URL / CELERY_BROKER_URL when set, else the embedded default (SQLite + a folder broker).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
BIN="$VENV/bin"
PORT=${PORT:-8000}

"$PY" manage.py migrate --no-input -v 0
"$PY" manage.py collectstatic --no-input -v 0
"$PY" manage.py load_demo_data
"$PY" manage.py ensure_admin

pids=()
stop() { trap - INT TERM EXIT; kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap stop INT TERM EXIT

"$BIN/gunicorn" luffy_admin.wsgi --bind "127.0.0.1:$PORT" --workers 2 --access-logfile - &
pids+=($!)
"$BIN/celery" -A luffy_admin beat -S django --loglevel INFO --pidfile= &
pids+=($!)
# The demo worker stands in for luffy's workers and also runs beat's heartbeat (see /health).
"$BIN/celery" -A demo.worker worker -Q "default,${LUFFY_BEAT_HEARTBEAT_QUEUE:-luffy-admin}" \
  --loglevel INFO --concurrency 1 --hostname "demo@%h" &
pids+=($!)

echo "luffy-admin: admin on http://127.0.0.1:$PORT/admin/ , API on http://127.0.0.1:$PORT/api/v1/task-scheduling/"
wait -n "${pids[@]}"
