"""A stand-in for luffy's workers, for local runs and end-to-end tests.

The real tasks live in the luffy codebase. This worker registers a task under each
catalogue task name that logs the call and appends it, with its service id, to a JSON-lines
file, so a person or a test can see what beat sent. It also runs luffy-admin's beat heartbeat,
so it consumes the heartbeat queue as well. It sends task events, as luffy's workers must for
run outcomes (docs/runs.md). Calls for ``flaky-svc`` fail every other time, so the admin shows
both outcomes:

    celery -A demo.worker worker -Q default,luffy-admin --loglevel INFO
"""

import json
import logging
import os
import time
from pathlib import Path

import django
from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "luffy_admin.settings")
django.setup()

from django.conf import settings  # noqa: E402  (needs django.setup() first)

from schedules import tasks  # noqa: E402,F401  (registers the beat heartbeat on this app)
from schedules.catalogue import get_catalogue  # noqa: E402

logger = logging.getLogger("luffy.demo")

app = Celery("luffy_demo")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Task events, which `manage.py monitor_runs` turns into run outcomes (docs/runs.md).
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#worker-send-task-events
app.conf.worker_send_task_events = True
app.conf.task_send_sent_event = True

RECORD_FILE = Path(os.environ.get("LUFFY_DEMO_RECORD_FILE", settings.VAR_DIR / "demo-calls.jsonl"))
FLAKY_SERVICE = "flaky-svc"


class FlakyServiceError(RuntimeError):
    """The demo's deliberate failure: flaky-svc's every other call."""


def stand_in(self, service_id):
    call = {
        "task": self.name,
        "service_id": service_id,
        "args": list(self.request.args),
        "queue": (self.request.delivery_info or {}).get("routing_key"),
        "task_id": self.request.id,
        # django-celery-beat adds this header to every message beat sends; run-now has none.
        "periodic_task_name": getattr(self.request, "periodic_task_name", None),
        "received_at": time.time(),
    }
    logger.info("demo worker ran %s for service %s (task id %s)", self.name, service_id, self.request.id)
    with RECORD_FILE.open("a") as record:
        record.write(json.dumps(call) + "\n")
    if service_id == FLAKY_SERVICE and _calls_for(service_id) % 2 == 0:
        # Counted from the record file, not in memory, so it alternates across pool processes.
        raise FlakyServiceError(f"{service_id} fails every other run (demo)")
    return call


def _calls_for(service_id: str) -> int:
    with RECORD_FILE.open() as record:
        return sum(1 for line in record if json.loads(line)["service_id"] == service_id)


for entry in get_catalogue().values():
    app.task(name=entry.task, bind=True)(stand_in)
