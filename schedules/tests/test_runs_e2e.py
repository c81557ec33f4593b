"""Run outcomes end to end: a real beat, the demo worker with task events on, and the monitor.

Once per module and scheduler (the stock ``-S django`` and the fleet scheduler) this starts the
demo worker on a queue of its own, ``manage.py monitor_runs`` with a short
``LUFFY_RUN_LOST_SECONDS``, and beat, against the test database and the configured broker. The
catalogue sends ``index_code`` to a queue no worker consumes, so its runs are lost. Everything
is read back through the API, as a caller sees it. Database access is held open for the module
as in test_beat.py (beat and the monitor must see the tests' commits).
"""

import json
import os
import sys
import time
import uuid
from datetime import datetime
from http import HTTPStatus
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.db.models import Count
from django.test import override_settings
from kombu import Exchange, Queue
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from luffy_admin.celery import app as celery_app
from schedules import selectors, services
from schedules.models import ApiKeyScope, Dispatch, TaskSchedule

from .e2e import Process, database_url, shared_test_database, text_of, wait_for

pytestmark = pytest.mark.e2e

BASE = "/api/v1/task-scheduling"
LOST_SECONDS = 3
# The monitor checks for lost runs every 5 s, after LOST_SECONDS.
LOST_WITHIN = LOST_SECONDS + 5 + 5
SCHEDULERS = {"stock": "django", "fleet": "schedules.scheduler:FleetScheduler"}


class Api:
    def __init__(self, key: str):
        self.client = APIClient()
        self.client.credentials(HTTP_AUTHORIZATION=f"Token {key}")

    def call(self, method: str, path: str, expected: HTTPStatus, body: dict | None = None):
        response = getattr(self.client, method)(f"{BASE}{path}", body, format="json")
        assert response.status_code == expected, response.content
        return response

    def schedule(self, service_id: str, **body) -> dict:
        self.call("put", f"/services/{service_id}", HTTPStatus.CREATED, {"name": service_id})
        return self.call("post", f"/services/{service_id}/schedules", HTTPStatus.CREATED, body).json()

    def runs(self, schedule_id: str, **query) -> list[dict]:
        path = f"/schedules/{schedule_id}/runs?page_size=200" + "".join(f"&{k}={v}" for k, v in query.items())
        return self.call("get", path, HTTPStatus.OK).json()["results"]


@pytest.fixture(scope="module")
def e2e_database(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), shared_test_database():
        yield


@pytest.fixture(scope="module", params=list(SCHEDULERS))
def stack(request, e2e_database, tmp_path_factory):
    if connection.vendor != "postgresql":
        pytest.skip("beat, the worker and the monitor need a database server they share with the tests (PostgreSQL)")
    folder = tmp_path_factory.mktemp(f"runs-e2e-{request.param}")
    queue = f"e2e-runs-{os.getpid()}"
    nobody = f"{queue}-nobody"
    heartbeat_queue = f"{queue}-heartbeat"
    catalogue = [
        {**entry, "queue": nobody if entry["name"] == "index_code" else queue, "min_interval_seconds": 1}
        for entry in settings.LUFFY_TASK_CATALOGUE
    ]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "luffy_admin.settings",
        "DATABASE_URL": database_url(connection.settings_dict),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "LUFFY_VAR_DIR": str(settings.VAR_DIR),
        "LUFFY_TASK_CATALOGUE": json.dumps(catalogue),
        "LUFFY_QUEUES": f"{queue},{nobody}",
        "LUFFY_BEAT_HEARTBEAT_SECONDS": "2",
        "LUFFY_BEAT_HEARTBEAT_QUEUE": heartbeat_queue,
        "LUFFY_RUN_LOST_SECONDS": str(LOST_SECONDS),
        "LUFFY_DEMO_RECORD_FILE": str(folder / "calls.jsonl"),
        "TZ": "UTC",
        "PYTHONUNBUFFERED": "1",
    }
    celery = [sys.executable, "-m", "celery"]
    project = Path(settings.BASE_DIR)
    processes: list[Process] = []

    def start(name: str, args: list[str], ready: str):
        process = Process(args, env=env, cwd=project, output=folder / f"{name}.out")
        processes.append(process)
        wait_for(
            lambda: process.assert_running() or ready in text_of(folder / f"{name}.out"),
            timeout=60,
            what=f"{name} to start (see {folder / f'{name}.out'})",
        )

    with override_settings(LUFFY_TASK_CATALOGUE=catalogue, LUFFY_QUEUES=[queue, nobody]):
        try:
            start(
                "worker",
                [*celery, "-A", "demo.worker", "worker", "-Q", f"{queue},{heartbeat_queue}", "--pool", "solo"]
                + ["--hostname", f"{queue}@localhost", "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
                " ready.",
            )
            start("monitor", [sys.executable, "manage.py", "monitor_runs"], "monitor: listening")
            start(
                "beat",
                [*celery, "-A", "luffy_admin", "beat", "-S", SCHEDULERS[request.param], "--loglevel", "INFO"]
                + ["--pidfile", str(folder / "beat.pid"), "--schedule", str(folder / "beat-schedule")],
                "beat: Starting",
            )
            yield folder
        finally:
            for process in reversed(processes):
                process.stop()
            with celery_app.connection_for_write() as broker:
                for name in (queue, nobody, heartbeat_queue):
                    bound = Queue(name, Exchange(name), routing_key=name)(broker.default_channel)
                    bound.declare()
                    bound.delete()
            call_command("flush", interactive=False, verbosity=0)


@pytest.fixture
def api(stack):
    api_key, key = services.api_key_create(name=f"e2e-{uuid.uuid4().hex[:8]}", scopes=set(ApiKeyScope.NAMES))
    yield Api(key)
    api_key.delete()
    actor = services.Actor.system("e2e-cleanup")
    for service in list(selectors.service_list()):
        services.service_delete(actor=actor, service=service)


def _run_in(api: Api, schedule_id: str, state: str, timeout: float) -> dict:
    return wait_for(
        lambda: next(iter(api.runs(schedule_id, state=state)), None),
        timeout=timeout,
        what=f"a {state} run of {schedule_id}",
    )


def test_a_succeeding_schedule_shows_succeeded_with_its_runtime_within_10_s(stack, api):
    schedule = api.schedule(
        f"ok-{uuid.uuid4().hex[:8]}", task_name="fetch_logs", schedule_type="interval", interval_seconds=2
    )
    run = _run_in(api, schedule["id"], "succeeded", timeout=30)
    seen = time.time()
    assert seen - datetime.fromisoformat(run["finished_at"]).timestamp() <= 10
    assert run["trigger"] == "schedule" and run["runtime_seconds"] >= 0 and run["error"] is None
    assert run["worker"].startswith("e2e-runs-")
    assert run["sent_at"] <= run["received_at"] <= run["started_at"] <= run["finished_at"]
    body = api.call("get", f"/schedules/{schedule['id']}", HTTPStatus.OK).json()
    assert body["last_outcome"]["state"] in {"sent", "received", "started", "succeeded"}
    assert body["failing"] is False
    assert api.call("get", "/health", HTTPStatus.OK).json()["monitor"] == "ok"


def test_a_failing_schedule_shows_failed_with_the_exception(stack, api):
    """flaky-svc: the demo worker fails every other call."""
    schedule = api.schedule("flaky-svc", task_name="fetch_logs", schedule_type="interval", interval_seconds=1)
    run = _run_in(api, schedule["id"], "failed", timeout=30)
    assert run["error"] == {"type": "FlakyServiceError", "message": "flaky-svc fails every other run (demo)"}
    assert run["finished_at"] is not None and run["runtime_seconds"] is not None
    wait_for(lambda: api.runs(schedule["id"], state="succeeded"), timeout=10, what="a succeeded run of flaky-svc")


def test_a_schedule_on_a_queue_no_worker_consumes_becomes_lost(stack, api):
    schedule = api.schedule(
        f"lost-{uuid.uuid4().hex[:8]}", task_name="index_code", schedule_type="interval", interval_seconds=2
    )
    run = _run_in(api, schedule["id"], "lost", timeout=5 + LOST_WITHIN)
    assert (run["received_at"], run["worker"], run["error"]) == (None, None, None)


def test_a_run_now_shows_up_with_its_trigger_and_outcome(stack, api):
    schedule = api.schedule(f"now-{uuid.uuid4().hex[:8]}", task_name="generate_rca", cron_expression="0 0 1 1 *")
    task_id = api.call("post", f"/schedules/{schedule['id']}/run", HTTPStatus.ACCEPTED).json()["task_id"]
    run = _run_in(api, schedule["id"], "succeeded", timeout=20)
    assert (run["task_id"], run["trigger"]) == (task_id, "run_now")


def test_metrics_parse_and_their_counts_match_the_run_records(stack, api):
    """Once the runs have settled (schedules disabled, every run finished or lost), /metrics
    counts exactly the run records, per task, queue and state."""
    fine = api.schedule(
        f"m-{uuid.uuid4().hex[:8]}", task_name="fetch_logs", schedule_type="interval", interval_seconds=1
    )
    lost = api.schedule(
        f"m-{uuid.uuid4().hex[:8]}", task_name="index_code", schedule_type="interval", interval_seconds=1
    )
    wait_for(lambda: len(api.runs(fine["id"], state="succeeded")) >= 2, timeout=20, what="two succeeded runs")
    _run_in(api, lost["id"], "lost", timeout=5 + LOST_WITHIN)
    for schedule in (fine, lost):
        api.call("post", f"/schedules/{schedule['id']}/toggle?enabled=false", HTTPStatus.OK)
    unsettled = {"sent", "received", "started"}
    pending: list = []

    def settled():
        pending[:] = [run for s in (fine, lost) for run in api.runs(s["id"]) if run["state"] in unsettled]
        return not pending

    try:
        wait_for(settled, timeout=2 * LOST_WITHIN, what="every run to finish or turn lost")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; still going: {pending}") from None

    response = api.client.get("/metrics")
    assert response.status_code == HTTPStatus.OK
    families = {family.name: family for family in text_string_to_metric_families(response.content.decode())}
    scraped = {
        (sample.labels["task"], sample.labels["queue"], sample.labels["state"]): int(sample.value)
        for sample in families["luffy_runs"].samples
    }
    names = dict(TaskSchedule.objects.values_list("periodic_task__name", "task_name"))
    queues = dict(TaskSchedule.objects.values_list("task_name", "periodic_task__queue"))
    recorded: dict[tuple, int] = {}
    counts = Dispatch.objects.filter(periodic_task_name__in=names).values_list("periodic_task_name", "state")
    for name, state, count in counts.annotate(count=Count("pk")).order_by():
        key = (names[name], queues[names[name]], state)
        recorded[key] = recorded.get(key, 0) + count
    assert scraped == recorded
    assert scraped[("fetch_logs", queues["fetch_logs"], "succeeded")] >= 2
    assert scraped[("index_code", queues["index_code"], "lost")] >= 1
    durations = {
        sample.labels["task"]: sample.value
        for sample in families["luffy_run_duration_seconds"].samples
        if sample.name.endswith("_count")
    }
    assert durations["fetch_logs"] == scraped[("fetch_logs", queues["fetch_logs"], "succeeded")]
