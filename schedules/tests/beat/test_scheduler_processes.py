"""The fleet scheduler as real processes: two beats, a SIGKILL, poison rows, the demo worker.

One session-scoped run per broker (Redis, then RabbitMQ on a vhost of its own; about 20 s each)
feeds every test here: three services on one-second
schedules, two beats on the pytest database, rows inserted with SQL that no scheduler can
run, the active beat killed with SIGKILL, and the worker-side record of what arrived.
"""

import os
import signal
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import Max
from django.test import override_settings

from schedules import services
from schedules.models import Dispatch, Service

from ..e2e import rabbitmq_vhost, wait_for
from .processes import ROOT, Processes, calls_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SERVICES = ("svc-a", "svc-b", "svc-c")
POISON = ("poison-never-fires", "poison-broken-args", "poison-added-while-running")


def database_url(settings_dict) -> str:
    user = settings_dict.get("USER") or "postgres"
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{settings_dict['NAME']}"


@dataclass
class FailoverRun:
    received: list[dict]
    dispatches: list[dict]
    led_at: float
    killed_at: float
    took_over_at: float
    exit_codes: dict
    logs: dict


def insert_poison_row(name: str, queue: str, *, crontab_id=None, interval_id=None, args="[]"):
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO django_celery_beat_periodictask (name, task, args, kwargs, enabled, one_off, "
            "total_run_count, date_changed, description, headers, interval_id, crontab_id, queue) "
            "VALUES (%s, 'src.services.tasks.fetch_and_process_logs', %s, '{}', true, false, 0, now(), "
            "'', '{}', %s, %s, %s)",
            [name, args, interval_id, crontab_id, queue],
        )


def last_claims_before(dispatches: list[dict], killed_at: float) -> set[str]:
    """The task ids of the killed beat's last claim batch: maybe never handed to the broker
    (docs/beat.md's known limit: a SIGKILL between a claim and its publish loses the slot rather
    than risk sending it twice). Claims of one batch share their time."""
    last = max(row["sent_at"] for row in dispatches if row["sent_at"].timestamp() <= killed_at)
    return {row["task_id"] for row in dispatches if row["sent_at"] == last}


def every_schedule_sent_after(moment: float) -> bool:
    """Each service's schedule has a claimed slot later than ``moment``."""
    last = Dispatch.objects.values("periodic_task_name").annotate(last=Max("slot"))
    return len(last) == len(SERVICES) and all(row["last"].timestamp() > moment for row in last)


@pytest.fixture(scope="session", params=["redis", "rabbitmq"])
def failover_run(request, django_db_setup, django_db_blocker, tmp_path_factory):
    """Run the scenario once per broker; the tests below read what it recorded."""
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    broker_url = settings.CELERY_BROKER_URL
    if request.param == "rabbitmq":
        contexts = ExitStack()
        request.addfinalizer(contexts.close)
        broker_url = contexts.enter_context(rabbitmq_vhost(f"luffy_test_failover_{os.getpid()}"))

    tmp = tmp_path_factory.mktemp("fleet")
    queue = f"fleet-{uuid.uuid4().hex[:8]}"
    catalogue = [
        {
            "name": "fetch_logs",
            "task": "src.services.tasks.fetch_and_process_logs",
            "queue": queue,
            "description": "Fetch logs.",
            "min_interval_seconds": 1,
            "max_interval_seconds": 86400,
        }
    ]
    record = tmp / "calls.jsonl"
    # No heartbeat entry: the tests count and time only the schedules they make.
    env = dict(
        os.environ,
        DATABASE_URL=database_url(connection.settings_dict),
        LUFFY_DEMO_RECORD_FILE=str(record),
        PYTHONPATH=str(ROOT),
        LUFFY_BEAT_HEARTBEAT_SECONDS="0",
        CELERY_BROKER_URL=broker_url,
    )
    processes = Processes(tmp, env)
    actor = services.Actor.system("tests")
    with django_db_blocker.unblock(), override_settings(LUFFY_TASK_CATALOGUE=catalogue, LUFFY_QUEUES=[queue]):
        try:
            processes.worker(queue)
            processes.wait_for("worker", "ready.")
            for service_id in SERVICES:
                service = services.service_create(actor=actor, service_id=service_id, name=service_id)
                services.schedule_create(
                    actor=actor, service=service, task_name="fetch_logs", schedule_type="interval", interval_seconds=1
                )
            never = CrontabSchedule.objects.create(minute="0", hour="0", day_of_month="30", month_of_year="2")
            insert_poison_row(POISON[0], queue, crontab_id=never.pk)
            interval_id = PeriodicTask.objects.filter(queue=queue).values_list("interval_id", flat=True)[0]
            insert_poison_row(POISON[1], queue, interval_id=interval_id, args="[broken")

            processes.beat("beat-a")
            led_at = processes.wait_for("beat-a", "took the leader lock")
            processes.beat("beat-b")
            processes.wait_for("beat-b", "beat: Starting...")
            time.sleep(2)
            insert_poison_row(POISON[2], queue, crontab_id=never.pk)
            time.sleep(2)
            processes.started["beat-a"].send_signal(signal.SIGKILL)
            killed_at = time.time()
            took_over_at = processes.wait_for("beat-b", "took the leader lock", timeout=15)
            wait_for(
                lambda: every_schedule_sent_after(took_over_at + 4),
                timeout=20,
                what="the new leader to dispatch for four seconds",
            )
            processes.started["beat-b"].send_signal(signal.SIGTERM)
            processes.started["beat-b"].wait(timeout=15)
            dispatches = list(Dispatch.objects.values("periodic_task_name", "slot", "task_id", "sent_at"))
            must_arrive = {row["task_id"] for row in dispatches} - last_claims_before(dispatches, killed_at)
            wait_for(
                lambda: must_arrive <= {call["task_id"] for call in calls_in(record)},
                timeout=20,
                what="the worker to run every dispatched slot",
            )
        finally:
            processes.stop_all()
            for service in Service.objects.filter(id__in=SERVICES):
                services.service_delete(actor=actor, service=service)
            PeriodicTask.objects.filter(name__in=POISON).delete()
            Dispatch.objects.all().delete()
    exit_codes = {name: process.returncode for name, process in processes.started.items()}
    logs = {name: processes.log(name) for name in processes.started}
    received = calls_in(record)
    return FailoverRun(received, dispatches, led_at, killed_at, took_over_at, exit_codes, logs)


def _by_schedule(rows, key):
    grouped = {}
    for row in rows:
        grouped.setdefault(row[key], []).append(row)
    return grouped


def test_failover_sends_every_slot_exactly_once(failover_run):
    """The worker receives each one-second slot of each schedule once, with none missing across the kill."""
    dispatched = _by_schedule(failover_run.dispatches, "periodic_task_name")
    received = _by_schedule(failover_run.received, "periodic_task_name")
    assert len(dispatched) == len(SERVICES)
    assert set(received) == set(dispatched)
    for name, rows in dispatched.items():
        slots = sorted(row["slot"].timestamp() for row in rows)
        assert [round(b - a, 6) for a, b in zip(slots, slots[1:], strict=False)] == [1.0] * (len(slots) - 1), name
        assert slots[0] < failover_run.killed_at - 2 and slots[-1] > failover_run.took_over_at + 4
        task_ids = [call["task_id"] for call in received[name]]
        assert len(task_ids) == len(set(task_ids)), f"{name}: a slot ran twice"
        missing = {row["task_id"] for row in rows} - set(task_ids)
        assert missing <= last_claims_before(failover_run.dispatches, failover_run.killed_at), (name, missing)
        assert set(task_ids) <= {row["task_id"] for row in rows}, name


def test_a_standby_takes_over_within_five_seconds_of_a_sigkill(failover_run):
    """The standby holds the lock and sends again within 5 s of the active beat's death."""
    assert failover_run.took_over_at - failover_run.killed_at < 5
    sent_after_kill = min(
        row["sent_at"].timestamp()
        for row in failover_run.dispatches
        if row["sent_at"].timestamp() > failover_run.killed_at
    )
    assert sent_after_kill - failover_run.killed_at < 5


def test_poison_rows_are_logged_and_leave_every_other_schedule_on_time(failover_run):
    """Rows no scheduler can run (inserted with SQL, before and during the run) cost only a log line."""
    for beat in ("beat-a", "beat-b"):
        for name in POISON[:2]:
            assert f"beat: skipping schedule '{name}'" in failover_run.logs[beat]
    assert f"beat: skipping schedule '{POISON[2]}'" in failover_run.logs["beat-b"]
    # Late by design: slots that came due before the first beat loaded, or while none led.
    outside_failover = [
        row
        for row in failover_run.dispatches
        if row["slot"].timestamp() > failover_run.led_at + 1
        and not failover_run.killed_at - 1 < row["slot"].timestamp() < failover_run.took_over_at + 1
    ]
    lateness = sorted((row["sent_at"] - row["slot"]).total_seconds() for row in outside_failover)
    assert lateness[-1] < 0.5, lateness[-5:]
    assert failover_run.exit_codes == {"worker": 0, "beat-a": -signal.SIGKILL, "beat-b": 0}


def test_beat_log_names_the_scheduler_mode(failover_run):
    """Each beat says it runs with the leader lock, so an operator sees standbys are allowed."""
    for beat in ("beat-a", "beat-b"):
        assert "fleet scheduler -> PostgreSQL advisory lock, standbys allowed" in failover_run.logs[beat]
