#!/usr/bin/env bash
# The run command (`make run`): admin + API on http://127.0.0.1:8000, beat, the run monitor and the demo worker.
# Uses DATABASE_URL / CELERY_BROKER_URL when set, else the embedded default (SQLite + a folder broker).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
BIN="$VENV/bin"
PORT=${PORT:-8000}

# Before anything starts: a busy port would otherwise fail gunicorn after the banner.
if ! "$PY" -c "import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', int(sys.argv[1])))" "$PORT" 2>/dev/null; then
  echo "luffy-admin: port $PORT on 127.0.0.1 is in use. Pick another one: PORT=8010 make run" >&2
  exit 1
fi

"$PY" manage.py migrate --no-input -v 0
"$PY" manage.py collectstatic --no-input -v 0
"$PY" manage.py load_demo_data
"$PY" manage.py ensure_admin

pids=()
stop() { trap - INT TERM EXIT; kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap stop INT TERM EXIT

GUNICORN_BIND="127.0.0.1:$PORT" "$BIN/gunicorn" -c gunicorn.conf.py luffy_admin.wsgi &
pids+=($!)
# The fleet scheduler (CELERY_BEAT_SCHEDULER); on SQLite it runs as the single beat.
"$BIN/celery" -A luffy_admin beat --loglevel INFO --pidfile= &
pids+=($!)
# The run monitor: task events from the demo worker -> each run's outcome (docs/runs.md).
"$PY" manage.py monitor_runs &
pids+=($!)
# The demo worker stands in for luffy's workers and also runs beat's heartbeat (see /health). The solo
# pool runs tasks in the worker process itself: a stop is a warm shutdown with no pool child to kill.
"$BIN/celery" -A demo.worker worker -Q "default,${LUFFY_BEAT_HEARTBEAT_QUEUE:-luffy-admin}" \
  --loglevel INFO --pool solo --hostname "demo@%h" &
pids+=($!)

echo "luffy-admin: admin on http://127.0.0.1:$PORT/admin/ , API on http://127.0.0.1:$PORT/api/v1/task-scheduling/"
wait -n "${pids[@]}"
