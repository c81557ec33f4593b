"""The run monitor's update path, driven by hand: events in, a clock passed in, no broker.

The real loop (broker, workers, beat) is exercised in test_runs_e2e.py.
"""

import uuid
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from unittest import mock

import pytest
from django.db import OperationalError
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from schedules import health, services
from schedules.models import Dispatch, MonitorHeartbeat
from schedules.monitor import RunMonitor

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, moment: datetime):
        self.now = moment.timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock():
    return Clock(T0)


@pytest.fixture
def monitor(clock):
    monitor = RunMonitor(mock.Mock(), lost_seconds=60, retention=timedelta(hours=1), clock=clock)
    monitor.listening_since = clock()
    return monitor


@pytest.fixture
def run(make_schedule):
    schedule = make_schedule()

    def make(*, sent_at=T0, trigger=Dispatch.Trigger.SCHEDULE) -> str:
        task_id = str(uuid.uuid4())
        services.run_record_sent(
            periodic_task_name=schedule.periodic_task.name,
            slot=sent_at,
            task_id=task_id,
            sent_at=sent_at,
            trigger=trigger,
        )
        return task_id

    return make


def _state(task_id: str) -> str:
    return Dispatch.objects.get(task_id=task_id).state


def _event(kind, task_id, at: float, **fields):
    return {"type": kind, "uuid": task_id, "timestamp": at, "hostname": "celery@w1", **fields}


def test_events_are_written_in_batches_on_the_clock(monitor, clock, run):
    """Nothing is written between two flushes; a tick after flush_seconds writes the batch."""
    task_id = run()
    monitor.tick()
    monitor.on_event(_event("task-received", task_id, clock()))
    assert _state(task_id) == "sent"
    clock.advance(monitor.flush_seconds)
    monitor.tick()
    assert _state(task_id) == "received"


def test_a_full_batch_is_written_at_once(monitor, clock, run):
    task_ids = [run(sent_at=T0 + timedelta(seconds=index)) for index in range(3)]
    monitor.max_batch = 3
    monitor.tick()
    for task_id in task_ids:
        monitor.on_event(_event("task-started", task_id, clock()))
    assert {_state(task_id) for task_id in task_ids} == {"started"}


def test_a_database_outage_keeps_the_batch_and_writes_it_once_back(monitor, clock, run):
    """Events heard while the database is down are written after it answers again, merged
    with those heard since."""
    task_id = run()
    monitor.tick()
    monitor.on_event(_event("task-started", task_id, clock()))
    clock.advance(1)
    with mock.patch.object(services, "run_events_apply", side_effect=OperationalError("down")):
        monitor.tick()
    monitor.on_event(_event("task-succeeded", task_id, clock(), runtime=1.0))
    assert _state(task_id) == "sent"
    clock.advance(60)
    monitor.tick()
    run_record = Dispatch.objects.get(task_id=task_id)
    assert (run_record.state, run_record.runtime_seconds, run_record.started_at) == ("succeeded", 1.0, T0)


def test_events_that_come_before_their_run_is_written_are_applied_once_it_is(monitor, clock, make_schedule):
    """A beat that kept its records in memory through a database outage writes them late: the
    workers' events for those runs, heard first, are kept and applied when the run appears."""
    schedule = make_schedule()
    task_id = str(uuid.uuid4())
    monitor.tick()
    monitor.on_event(_event("task-received", task_id, clock()))
    clock.advance(1)
    monitor.tick()
    services.run_record_sent(periodic_task_name=schedule.periodic_task.name, slot=T0, task_id=task_id, sent_at=T0)
    clock.advance(1)
    monitor.tick()
    assert _state(task_id) == "received"
    clock.advance(monitor.unmatched_seconds)
    monitor.on_event(_event("task-started", "not-a-run", clock()))
    monitor.tick()
    clock.advance(monitor.unmatched_seconds + 1)
    monitor.tick()
    assert monitor.unmatched == {}, "kept only for a while"


def test_runs_not_received_in_time_become_lost(monitor, clock, run):
    """Lost after LUFFY_RUN_LOST_SECONDS; a run received just now (still in the batch) is not."""
    never = run(sent_at=T0 + timedelta(seconds=1))
    received = run(sent_at=T0 + timedelta(seconds=2))
    clock.advance(100)
    monitor.on_event(_event("task-received", received, clock()))
    monitor.tick()
    assert (_state(never), _state(received)) == ("lost", "received")


def test_the_heartbeat_and_lag_are_written_while_listening(monitor, clock, run):
    task_id = run()
    clock.advance(2)
    monitor.on_event(_event("task-received", task_id, clock() - 0.25))
    monitor.tick()
    heartbeat = MonitorHeartbeat.objects.get()
    assert (heartbeat.seen_at, heartbeat.lag_seconds) == (T0 + timedelta(seconds=2), 0.25)


def test_old_runs_are_pruned(monitor, clock, run):
    old, kept = run(sent_at=T0), run(sent_at=T0 + timedelta(minutes=90))
    clock.advance(2 * 3600)
    monitor.tick()
    assert list(Dispatch.objects.values_list("task_id", flat=True)) == [kept]
    assert old != kept


def test_workers_are_asked_to_send_events_at_start_and_every_minute(monitor, clock):
    monitor.tick()
    clock.advance(30)
    monitor.tick()
    clock.advance(30)
    monitor.tick()
    assert monitor.app.control.enable_events.call_count == 2


@pytest.mark.parametrize(("age_seconds", "expected"), [(None, "unknown"), (5, "ok"), (120, "stale")])
@override_settings(LUFFY_MONITOR_STALE_SECONDS=30)
def test_health_reports_the_monitor_from_its_heartbeat(age_seconds, expected):
    if age_seconds is not None:
        services.monitor_heartbeat_record(seen_at=timezone.now() - timedelta(seconds=age_seconds))
    response = APIClient().get("/api/v1/task-scheduling/health")
    assert response.status_code == HTTPStatus.OK
    assert response.json() == {
        "status": "degraded" if expected == health.STALE else "ok",
        "database": "ok",
        "broker": "ok",
        "beat": "unknown",
        "monitor": expected,
    }
