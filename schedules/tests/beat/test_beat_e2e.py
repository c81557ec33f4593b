"""The timing promises, shown with a real beat, broker and worker.

Once per module this starts ``celery -A luffy_admin beat -S django`` and the demo worker
against the test database and the configured broker, on a queue of its own (``e2e-<pid>``) so
parallel runs do not mix. Every test acts through ``Api`` and watches two things:

- beat's log: each "Scheduler: Sending due task <entry>" line is stamped (UTC, to the
  millisecond) just before beat publishes, so it is the send time compared with ``next_run``;
- the demo worker's record of each call: task, arguments, queue and beat entry name.

These tests are not marked ``django_db``: that would keep their writes in a transaction beat
never sees, and ``transactional_db`` truncates django-celery-beat's tables after each test
without the change bump beat relies on (beat would keep stale entries and lose the heartbeat
entry it installs at start). So the module holds database access open, each test's services
are deleted through the write path afterwards, and the database is flushed once beat and the
worker are stopped.
"""

import json
import os
import sys
import time
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django_celery_beat.models import PeriodicTask
from kombu import Exchange, Queue
from rest_framework.test import APIClient

from luffy_admin.celery import app as celery_app
from schedules import cron, health, selectors, services, timing
from schedules.models import ApiKeyScope

from ..e2e import (
    BeatLog,
    Process,
    Timings,
    WorkerCalls,
    app_broker,
    database_url,
    rabbitmq_vhost,
    shared_test_database,
    text_of,
    wait_for,
)

pytestmark = pytest.mark.e2e

BASE = "/api/v1/task-scheduling"
TASK = "fetch_logs"
CELERY_TASK = "src.services.tasks.fetch_and_process_logs"
HEARTBEAT_SECONDS = 2
# The contract's bounds.
PICKUP_SECONDS = 5
LAST_RUN_LAG_SECONDS = 10
# "To the second": beat sends no earlier than next_run (less the log's millisecond rounding)
# and less than a second after it.
EARLY_TOLERANCE = 0.002
LATE_TOLERANCE = 1.0
# How long past the 5 s to watch for sends that should not happen: over one 2 s interval.
OBSERVE_SECONDS = 3
# Beat log line -> worker receipt, through the broker.
BROKER_HOP_SECONDS = 1.0


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


class Api:
    """The REST API as the FastAPI stack calls it: seed paths without a trailing slash, an API key.

    Each write notes when it returned (committed), to measure how fast beat picks it up.
    """

    def __init__(self, changes: list[float], key: str):
        self.changes = changes
        self.client = APIClient()
        self.client.credentials(HTTP_AUTHORIZATION=f"Token {key}")

    def _call(self, method: str, path: str, expected: HTTPStatus, body: dict | None = None):
        response = getattr(self.client, method)(f"{BASE}{path}", body, format="json")
        assert response.status_code == expected, response.content
        return response.json()

    def _changed(self):
        self.changes.append(time.time())

    def create_service(self, service_id: str) -> None:
        self._call("put", f"/services/{service_id}", HTTPStatus.CREATED, {"name": service_id})

    def create_schedule(self, service_id: str, **body) -> dict:
        schedule = self._call("post", f"/services/{service_id}/schedules", HTTPStatus.CREATED, body)
        self._changed()
        return schedule

    def get(self, schedule_id: str) -> dict:
        return self._call("get", f"/schedules/{schedule_id}", HTTPStatus.OK)

    def update(self, schedule_id: str, **body) -> dict:
        schedule = self._call("put", f"/schedules/{schedule_id}", HTTPStatus.OK, body)
        self._changed()
        return schedule

    def toggle(self, schedule_id: str, enabled: bool) -> dict:
        answer = self._call("post", f"/schedules/{schedule_id}/toggle?enabled={str(enabled).lower()}", HTTPStatus.OK)
        self._changed()
        return answer["schedule"]

    def delete(self, schedule_id: str) -> None:
        self._call("delete", f"/schedules/{schedule_id}", HTTPStatus.OK)
        self._changed()

    def delete_service(self, service_id: str) -> None:
        self._call("delete", f"/services/{service_id}", HTTPStatus.OK)
        self._changed()

    def run_now(self, schedule_id: str) -> str:
        return self._call("post", f"/schedules/{schedule_id}/run", HTTPStatus.ACCEPTED)["task_id"]


@dataclass
class Stack:
    beat: Process
    worker: Process
    beat_log: BeatLog
    calls: WorkerCalls
    queue: str
    heartbeat_queue: str
    worker_name: str
    changes: list[float]
    timings: Timings

    def first_call(self, service_id: str, *, timeout: float) -> dict:
        return wait_for(
            lambda: self.calls.of(service_id) and self.calls.of(service_id)[0],
            timeout=timeout,
            what=f"the worker to run a task for {service_id}",
        )

    def sends(self, service_id: str) -> list[float]:
        """Beat's send times for every beat entry of the service the worker has seen."""
        names = {call["periodic_task_name"] for call in self.calls.of(service_id) if call["periodic_task_name"]}
        return sorted(at for name in names for at in self.beat_log.sends(name))

    def dispatch_error(self, *, sent: float, next_run: str) -> float:
        error = sent - _epoch(next_run)
        self.timings.dispatch_errors.append(error)
        return error


def _pickups(changes: list[float], reloads: list[float]) -> list[float]:
    """For each change, how long until beat logged that it reloaded its schedule."""
    latencies = []
    for changed in changes:
        # The log is stamped to the millisecond, rounded down.
        later = [reloaded for reloaded in reloads if reloaded >= changed - 0.001]
        if later:
            latencies.append(max(later[0] - changed, 0.0))
    return latencies


@pytest.fixture(scope="module")
def e2e_database(django_db_setup, django_db_blocker):
    """Database access held open for the module, on the test database."""
    with django_db_blocker.unblock(), shared_test_database():
        yield


SCHEDULERS = {
    "stock": "django",  # django-celery-beat's DatabaseScheduler, as the contract runs beat
    "fleet": "schedules.scheduler:FleetScheduler",
}


# The whole set on Redis with both schedulers. On RabbitMQ, the fleet scheduler only (the stock
# scheduler's publishing is Celery's own) and only the tests marked ``every_broker``: what the
# broker carries (delivery to the queue with the arguments, a send's arrival at the worker, run
# now, sends due together, the heartbeat and its expiry). The rest (disable, delete, timing
# updates, last_run, cron, H and jitter) is the scheduler's work on its rows, the same whichever
# broker follows.
STACKS = {"stock": ("stock", "redis"), "fleet": ("fleet", "redis"), "fleet-rabbitmq": ("fleet", "rabbitmq")}
REDIS_STACKS = [name for name, (_, broker) in STACKS.items() if broker == "redis"]
every_broker = pytest.mark.every_broker


def pytest_generate_tests(metafunc):
    """One module-scoped stack per name; the tests marked ``every_broker`` run on every stack."""
    if "stack" in metafunc.fixturenames:
        names = list(STACKS) if metafunc.definition.get_closest_marker("every_broker") else REDIS_STACKS
        metafunc.parametrize("stack", names, indirect=True, scope="module")


@pytest.fixture(scope="module")
def stack(request, e2e_database, tmp_path_factory):
    if connection.vendor != "postgresql":
        pytest.skip("beat and the worker need a database server they can share with the tests (PostgreSQL)")
    scheduler, broker = STACKS[request.param]
    broker_url = settings.CELERY_BROKER_URL
    if broker == "rabbitmq":
        brokers = ExitStack()
        request.addfinalizer(brokers.close)  # after the teardown below has deleted its queues
        broker_url = brokers.enter_context(rabbitmq_vhost(f"luffy_test_{os.getpid()}"))
        brokers.enter_context(app_broker(celery_app, broker_url))
    folder = tmp_path_factory.mktemp(f"beat-e2e-{request.param}")
    queue = f"e2e-{os.getpid()}"
    heartbeat_queue = f"{queue}-heartbeat"
    worker_name = f"{queue}@localhost"
    test_catalogue = [{**entry, "queue": queue, "min_interval_seconds": 1} for entry in settings.LUFFY_TASK_CATALOGUE]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "luffy_admin.settings",
        "DATABASE_URL": database_url(connection.settings_dict),
        "CELERY_BROKER_URL": broker_url,
        "LUFFY_VAR_DIR": str(settings.VAR_DIR),
        "LUFFY_TASK_CATALOGUE": json.dumps(test_catalogue),
        "LUFFY_QUEUES": queue,
        "LUFFY_BEAT_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
        "LUFFY_BEAT_HEARTBEAT_QUEUE": heartbeat_queue,
        "LUFFY_DEMO_RECORD_FILE": str(folder / "calls.jsonl"),
        "TZ": "UTC",
        "PYTHONUNBUFFERED": "1",
    }
    celery = [sys.executable, "-m", "celery"]
    project = Path(settings.BASE_DIR)
    timings = Timings(scheduler=request.param, pickups=[], dispatch_errors=[])
    changes: list[float] = []
    beat = worker = None
    test_settings = override_settings(
        LUFFY_TASK_CATALOGUE=test_catalogue,
        LUFFY_QUEUES=[queue],
        LUFFY_BEAT_HEARTBEAT_STALE_SECONDS=3 * HEARTBEAT_SECONDS,
    )
    with test_settings:
        try:
            started_at = time.time()
            worker = Process(
                [
                    *celery,
                    "-A",
                    "demo.worker",
                    "worker",
                    "-Q",
                    f"{queue},{heartbeat_queue}",
                    "--pool",
                    "solo",
                    "--hostname",
                    worker_name,
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "--loglevel",
                    "INFO",
                    "--logfile",
                    str(folder / "worker.log"),
                ],
                env=env,
                cwd=project,
                output=folder / "worker.out",
            )
            wait_for(
                lambda: worker.assert_running() or " ready." in text_of(folder / "worker.log"),
                timeout=60,
                what=f"the worker to start (see {folder / 'worker.out'})",
            )
            beat = Process(
                [
                    *celery,
                    "-A",
                    "luffy_admin",
                    "beat",
                    "-S",
                    SCHEDULERS[scheduler],
                    "--loglevel",
                    "INFO",
                    "--logfile",
                    str(folder / "beat.log"),
                    "--pidfile",
                    str(folder / "beat.pid"),
                    "--schedule",
                    str(folder / "beat-schedule"),
                ],
                env=env,
                cwd=project,
                output=folder / "beat.out",
            )

            # The first heartbeat proves beat reads the database, publishes, and the worker runs it.
            def heartbeat_arrived():
                beat.assert_running()
                worker.assert_running()
                last = selectors.beat_heartbeat_get()
                return last is not None and last.received_at.timestamp() > started_at

            wait_for(heartbeat_arrived, timeout=60, what=f"the first beat heartbeat (see {folder / 'beat.out'})")
            yield Stack(
                beat=beat,
                worker=worker,
                beat_log=BeatLog(folder / "beat.log"),
                calls=WorkerCalls(folder / "calls.jsonl"),
                queue=queue,
                heartbeat_queue=heartbeat_queue,
                worker_name=worker_name,
                changes=changes,
                timings=timings,
            )
        finally:
            for process in (beat, worker):
                if process is not None:
                    process.stop()
            with celery_app.connection_for_write() as broker:
                for name in (queue, heartbeat_queue):
                    # Declared on this channel first, so kombu knows the bindings it removes.
                    bound = Queue(name, Exchange(name), routing_key=name)(broker.default_channel)
                    bound.declare()
                    bound.delete()
            call_command("flush", interactive=False, verbosity=0)
    timings.pickups.extend(_pickups(changes, BeatLog(folder / "beat.log").schedule_changes()))
    request.config.pluginmanager.register(timings)
    if hasattr(request.config, "workeroutput"):  # a pytest-xdist worker: the controller prints them
        request.config.workeroutput.setdefault("beat_timings", []).append(asdict(timings))


@contextmanager
def _api_key(stack):
    api_key, key = services.api_key_create(name=f"e2e-{uuid.uuid4().hex[:8]}", scopes=set(ApiKeyScope.NAMES))
    try:
        yield Api(stack.changes, key)
    finally:
        api_key.delete()


def _delete_services(keep=()):
    # Through the write path, so beat is told (PeriodicTasks bump) and drops the entries.
    actor = services.Actor.system("e2e-cleanup")
    for service in list(selectors.service_list()):
        if service.pk not in keep:
            services.service_delete(actor=actor, service=service)


@dataclass
class Early:
    """Schedules whose first send is up to a minute away, made as soon as a stack is up.

    Their tests run last in the module and check the first send then, so the stack's other tests
    run while they wait, instead of each test sleeping to the next minute on its own. Each test's
    assertions are the ones it makes on a schedule it creates itself.
    """

    cron: tuple[str, dict]  # service id, the create answer
    h: tuple[str, dict, datetime]  # and the minute its H resolves to
    jitter: tuple[str, dict, float]  # and when the create was sent

    @property
    def service_ids(self) -> set[str]:
        return {self.cron[0], self.h[0], self.jitter[0]}


CRON_TIMING = {"schedule_type": "cron", "cron_expression": "* * * * *", "timezone": "Asia/Kathmandu"}
JITTER = timing.Timing(timing.INTERVAL, None, 20, timing.UTC, jitter_seconds=2)


@pytest.fixture(scope="module")
def early(stack):
    with _api_key(stack) as api:
        cron_service = _service(api)
        cron_body = api.create_schedule(cron_service, task_name=TASK, **CRON_TIMING)
        # The coming minute at least 10 s away; a service id whose H lands on it.
        target = datetime.fromtimestamp(time.time() + 10, UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        h_service = _service_where(api, lambda key: cron.resolve("H * * * *", key)[0].minute == str(target.minute))
        h_body = api.create_schedule(h_service, task_name=TASK, cron_expression="H * * * *")
        jitter_service = _service_where(api, lambda key: timing.jitter_offset(JITTER, key) == 2)
        created = time.time()
        jitter_body = api.create_schedule(
            jitter_service, task_name=TASK, schedule_type="interval", interval_seconds=20, jitter_seconds=2
        )
    made = Early((cron_service, cron_body), (h_service, h_body, target), (jitter_service, jitter_body, created))
    yield made
    _delete_services()


@pytest.fixture
def api(stack, early):
    with _api_key(stack) as api:
        yield api
    _delete_services(keep=early.service_ids)


def _service(api: Api) -> str:
    service_id = f"e2e-{uuid.uuid4().hex[:10]}"
    api.create_service(service_id)
    return service_id


def _service_where(api: Api, lands) -> str:
    """A new service whose id hashes so that ``lands(key)`` holds (H and jitter hash the id)."""
    prefix = f"e2e-{uuid.uuid4().hex[:6]}"
    service_id = next(f"{prefix}-{n}" for n in range(100_000) if lands(timing.schedule_key(f"{prefix}-{n}", TASK)))
    api.create_service(service_id)
    return service_id


def _wait_past(moment: float) -> None:
    time.sleep(max(moment - time.time(), 0))


@every_broker
def test_created_schedule_is_sent_to_its_queue_with_the_service_id(stack, api):
    """Beat sends the catalogue's Celery task with args=[service_id] to the catalogue's queue."""
    service_id = _service(api)
    api.create_schedule(service_id, task_name=TASK, schedule_type="interval", interval_seconds=2)

    call = stack.first_call(service_id, timeout=2 + PICKUP_SECONDS)

    entry = call["periodic_task_name"]
    assert entry is not None, "a beat dispatch carries its beat entry name"
    assert call == {
        "task": CELERY_TASK,
        "service_id": service_id,
        "args": [service_id],
        "queue": stack.queue,
        "task_id": call["task_id"],
        "periodic_task_name": entry,
        "received_at": call["received_at"],
    }
    assert stack.beat_log.sent_tasks(entry) == {CELERY_TASK}


def test_last_run_follows_the_dispatch_and_next_run_follows_last_run(stack, api):
    """The API's last_run shows a dispatch within 10 s; the next send is at the new next_run."""
    service_id = _service(api)
    schedule = api.create_schedule(service_id, task_name=TASK, schedule_type="interval", interval_seconds=3)
    stack.first_call(service_id, timeout=3 + PICKUP_SECONDS)
    first_send = stack.sends(service_id)[0]

    body = wait_for(
        lambda: (body := api.get(schedule["id"]))["last_run"] and body,
        timeout=LAST_RUN_LAG_SECONDS,
        what="the API to show last_run",
    )

    assert time.time() - first_send <= LAST_RUN_LAG_SECONDS
    assert abs(_epoch(body["last_run"]) - first_send) < LATE_TOLERANCE
    assert body["total_run_count"] == 1
    wait_for(lambda: len(stack.sends(service_id)) >= 2, timeout=3 + PICKUP_SECONDS, what="the second dispatch")
    error = stack.dispatch_error(sent=stack.sends(service_id)[1], next_run=body["next_run"])
    assert -EARLY_TOLERANCE <= error < LATE_TOLERANCE, f"sent {error:+.3f} s from next_run {body['next_run']}"


def test_timing_update_is_followed_within_5_s_without_restarting_beat(stack, api):
    """Every 4 s changed to every 2 s: the next send is at the new next_run, by the same beat.

    A beat still on the old timing would send 4 s after the first dispatch, well after that
    next_run. (Every 2 s reuses the heartbeat's interval row, so only the task's own change
    tells beat.)
    """
    service_id = _service(api)
    schedule = api.create_schedule(service_id, task_name=TASK, schedule_type="interval", interval_seconds=4)
    stack.first_call(service_id, timeout=4 + PICKUP_SECONDS)

    updating_at = time.time()
    body = api.update(schedule["id"], interval_seconds=HEARTBEAT_SECONDS)

    assert 2 <= _epoch(body["next_run"]) - updating_at <= 2 + 1
    next_send = wait_for(
        lambda: [at for at in stack.sends(service_id) if at > updating_at],
        timeout=2 + PICKUP_SECONDS,
        what="a dispatch after the update",
    )[0]
    error = stack.dispatch_error(sent=next_send, next_run=body["next_run"])
    assert -EARLY_TOLERANCE <= error < LATE_TOLERANCE, f"sent {error:+.3f} s from next_run {body['next_run']}"
    assert next_send - updating_at <= PICKUP_SECONDS
    assert stack.beat.running()
    assert stack.beat_log.count("beat: Starting...") == 1


def test_disable_stops_dispatch_within_5_s_and_enable_does_not_run_at_once(stack, api):
    """No send later than 5 s after a disable; after enable, the first send is at next_run."""
    service_id = _service(api)
    schedule = api.create_schedule(service_id, task_name=TASK, schedule_type="interval", interval_seconds=2)
    stack.first_call(service_id, timeout=2 + PICKUP_SECONDS)

    disabled = api.toggle(schedule["id"], enabled=False)
    disabled_at = time.time()
    assert (disabled["enabled"], disabled["next_run"]) == (False, None)
    _wait_past(disabled_at + PICKUP_SECONDS + OBSERVE_SECONDS)
    assert [at for at in stack.sends(service_id) if at > disabled_at + PICKUP_SECONDS] == []
    assert [call for call in stack.calls.of(service_id) if call["received_at"] > disabled_at + PICKUP_SECONDS] == []

    enabling_at = time.time()
    enabled = api.toggle(schedule["id"], enabled=True)
    assert 2 <= _epoch(enabled["next_run"]) - enabling_at <= 2 + 1
    first_after_enable = wait_for(
        lambda: [at for at in stack.sends(service_id) if at > enabling_at],
        timeout=2 + PICKUP_SECONDS,
        what="a dispatch after enable",
    )[0]
    error = stack.dispatch_error(sent=first_after_enable, next_run=enabled["next_run"])
    assert -EARLY_TOLERANCE <= error < LATE_TOLERANCE, f"sent {error:+.3f} s from next_run {enabled['next_run']}"


def _beat_rows(service_id: str) -> list[str]:
    return list(PeriodicTask.objects.filter(args=json.dumps([service_id])).values_list("name", flat=True))


@pytest.mark.parametrize("delete", ["schedule", "service"])
def test_delete_stops_dispatch_within_5_s_and_leaves_no_beat_row(stack, api, delete):
    """After a delete nothing is sent for what was deleted and no PeriodicTask is left for it."""
    service_id = _service(api)
    deleted = api.create_schedule(service_id, task_name=TASK, schedule_type="interval", interval_seconds=2)
    kept_service = _service(api)
    api.create_schedule(kept_service, task_name=TASK, schedule_type="interval", interval_seconds=2)
    stack.first_call(service_id, timeout=2 + PICKUP_SECONDS)

    if delete == "schedule":
        api.delete(deleted["id"])
    else:
        api.delete_service(service_id)
    deleted_at = time.time()
    _wait_past(deleted_at + PICKUP_SECONDS + OBSERVE_SECONDS)

    assert [at for at in stack.sends(service_id) if at > deleted_at + PICKUP_SECONDS] == []
    assert [call for call in stack.calls.of(service_id) if call["received_at"] > deleted_at + PICKUP_SECONDS] == []
    assert _beat_rows(service_id) == []
    wait_for(
        lambda: [at for at in stack.sends(kept_service) if at > deleted_at + PICKUP_SECONDS],
        timeout=PICKUP_SECONDS,
        what="the other service's schedule to keep running",
    )


@every_broker
def test_run_now_reaches_the_worker_with_the_service_id(stack, api):
    """Run-now sends the catalogue task with [service_id] to its queue at once, outside beat."""
    service_id = _service(api)
    schedule = api.create_schedule(service_id, task_name=TASK, cron_expression="0 0 1 1 *")

    task_id = api.run_now(schedule["id"])

    call = stack.first_call(service_id, timeout=PICKUP_SECONDS)
    assert call == {
        "task": CELERY_TASK,
        "service_id": service_id,
        "args": [service_id],
        "queue": stack.queue,
        "task_id": task_id,
        "periodic_task_name": None,
        "received_at": call["received_at"],
    }


@every_broker
def test_two_services_with_one_task_and_timing_are_dispatched_independently(stack, api):
    """Same task, same interval, two services: two beat entries, each sending its own id."""
    first, second = _service(api), _service(api)
    for service_id in (first, second):
        api.create_schedule(service_id, task_name=TASK, schedule_type="interval", interval_seconds=2)

    wait_for(
        lambda: len(stack.calls.of(first)) >= 2 and len(stack.calls.of(second)) >= 2,
        timeout=4 + PICKUP_SECONDS,
        what="two dispatches for each service",
    )

    for service_id in (first, second):
        assert {(call["task"], tuple(call["args"])) for call in stack.calls.of(service_id)} == {
            (CELERY_TASK, (service_id,))
        }
    entries = [{call["periodic_task_name"] for call in stack.calls.of(service_id)} for service_id in (first, second)]
    assert len(entries[0]) == len(entries[1]) == 1
    assert entries[0] != entries[1]


@every_broker
def test_beat_heartbeat_reaches_the_worker_and_health_says_ok(stack):
    """The heartbeat beat installs at start keeps arriving at the worker; check_beat is ok."""
    last = selectors.beat_heartbeat_get()

    fresher = wait_for(
        lambda: (current := selectors.beat_heartbeat_get()).received_at > last.received_at and current,
        timeout=2 * HEARTBEAT_SECONDS + PICKUP_SECONDS,
        what="a newer heartbeat",
    )

    assert fresher.worker == stack.worker_name
    assert health.check_beat() == health.OK
    entry = PeriodicTask.objects.get(name="luffy-admin:beat-heartbeat")
    assert (entry.task, entry.queue, entry.enabled) == ("luffy_admin.beat_heartbeat", stack.heartbeat_queue, True)
    assert entry.expire_seconds == 3 * HEARTBEAT_SECONDS


# Last in the module: the first sends these check are those of the early schedules.


@every_broker
def test_first_dispatch_is_at_the_next_run_the_api_reported(stack, api):
    """Creating never runs at once; the first send is at the reported next_run, to the second."""
    service_id = _service(api)
    body = api.create_schedule(service_id, task_name=TASK, schedule_type="interval", interval_seconds=3)
    _assert_first_send_at_next_run(stack, service_id, body)


def test_first_cron_dispatch_is_at_the_next_run_the_api_reported(stack, early):
    """The same for `* * * * *` in Asia/Kathmandu (made when the stack came up): the first send
    is at the next whole minute the API reported, to the second."""
    service_id, body = early.cron
    _assert_first_send_at_next_run(stack, service_id, body)


def _assert_first_send_at_next_run(stack, service_id: str, body: dict) -> None:
    wait = max(_epoch(body["next_run"]) - time.time(), 0)

    call = stack.first_call(service_id, timeout=wait + PICKUP_SECONDS)

    first_send = stack.sends(service_id)[0]
    error = stack.dispatch_error(sent=first_send, next_run=body["next_run"])
    assert -EARLY_TOLERANCE <= error < LATE_TOLERANCE, f"sent {error:+.3f} s from next_run {body['next_run']}"
    assert 0 <= call["received_at"] - first_send < BROKER_HOP_SECONDS


def test_h_schedule_is_sent_at_its_resolved_minute(stack, early):
    """`H * * * *` resolves per service to one minute of the hour; beat sends it at that minute.
    Time is compressed by picking a service id whose H lands on the coming minute (made when
    the stack came up)."""
    service_id, body, target = early.h
    assert (body["cron_expression"], body["resolved_cron_expression"]) == ("H * * * *", f"{target.minute} * * * *")

    stack.first_call(service_id, timeout=max(_epoch(body["next_run"]) - time.time(), 0) + PICKUP_SECONDS)

    first_send = stack.sends(service_id)[0]
    error = stack.dispatch_error(sent=first_send, next_run=body["next_run"])
    assert -EARLY_TOLERANCE <= error < LATE_TOLERANCE, f"sent {error:+.3f} s from next_run {body['next_run']}"
    assert datetime.fromtimestamp(first_send, UTC).minute == target.minute


def test_interval_jitter_offset_is_honoured_by_beat(stack, early):
    """An interval with jitter first runs at change + interval + its offset, as next_run says
    (made when the stack came up)."""
    service_id, body, created = early.jitter
    assert 22 <= _epoch(body["next_run"]) - created < 23

    stack.first_call(service_id, timeout=max(_epoch(body["next_run"]) - time.time(), 0) + PICKUP_SECONDS)

    error = stack.dispatch_error(sent=stack.sends(service_id)[0], next_run=body["next_run"])
    assert -EARLY_TOLERANCE <= error < LATE_TOLERANCE, f"sent {error:+.3f} s from next_run {body['next_run']}"
