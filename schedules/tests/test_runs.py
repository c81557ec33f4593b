"""The run record: sends recorded by run-now and the stock scheduler's publish signal, and
worker events applied in any order, any number of times."""

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from celery.signals import before_task_publish
from django_celery_beat.schedulers import DatabaseScheduler

from schedules import run_signals, runs, services
from schedules.models import Dispatch

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


def _run(schedule, *, task_id=None, slot=T0, sent_at=None, trigger=Dispatch.Trigger.SCHEDULE) -> str:
    task_id = task_id or str(uuid.uuid4())
    services.run_record_sent(
        periodic_task_name=schedule.periodic_task.name,
        slot=slot,
        task_id=task_id,
        sent_at=sent_at or slot + timedelta(milliseconds=20),
        trigger=trigger,
    )
    return task_id


def _event(kind: str, task_id: str, seconds: float, **fields) -> dict:
    return {"type": kind, "uuid": task_id, "timestamp": (T0 + timedelta(seconds=seconds)).timestamp(), **fields}


def _life(task_id: str) -> list[dict]:
    return [
        _event("task-sent", task_id, 0.0, hostname="beat@host"),
        _event("task-received", task_id, 1.0, hostname="celery@w1", retries=0),
        _event("task-started", task_id, 2.0, hostname="celery@w1"),
        _event("task-succeeded", task_id, 5.5, hostname="celery@w1", runtime=3.5),
    ]


def _apply(events: list[dict]) -> None:
    buffer = runs.PatchBuffer()
    for event in events:
        buffer.add(event)
    services.run_events_apply(patches=buffer.take())


def _record(task_id: str) -> dict:
    return Dispatch.objects.filter(task_id=task_id).values(
        "trigger",
        "state",
        "received_at",
        "started_at",
        "finished_at",
        "runtime_seconds",
        "worker",
        "retries",
        "error_type",
        "error_message",
    )[0]


SUCCEEDED = {
    "trigger": "schedule",
    "state": "succeeded",
    "received_at": T0 + timedelta(seconds=1),
    "started_at": T0 + timedelta(seconds=2),
    "finished_at": T0 + timedelta(seconds=5.5),
    "runtime_seconds": 3.5,
    "worker": "celery@w1",
    "retries": 0,
    "error_type": "",
    "error_message": "",
}


def test_a_recorded_send_starts_as_sent_with_the_database_defaults(make_schedule):
    """A send recorded with the four columns the fleet scheduler inserts reads as a sent, scheduled run."""
    task_id = _run(make_schedule())
    assert _record(task_id) == {
        "trigger": "schedule",
        "state": "sent",
        "received_at": None,
        "started_at": None,
        "finished_at": None,
        "runtime_seconds": None,
        "worker": "",
        "retries": 0,
        "error_type": "",
        "error_message": "",
    }


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_events_in_any_order_give_the_same_record(make_schedule, order):
    """Events arriving out of order never move a run backwards: every order ends succeeded."""
    task_id = _run(make_schedule())
    life = _life(task_id)
    _apply([life[index] for index in order])
    assert _record(task_id) == SUCCEEDED


def test_events_one_batch_at_a_time_and_repeated_give_the_same_record(make_schedule):
    """Each event in its own batch, newest first, then all of them again: still the same record."""
    task_id = _run(make_schedule())
    for event in reversed(_life(task_id)):
        _apply([event])
    _apply(_life(task_id) + _life(task_id))
    assert _record(task_id) == SUCCEEDED


def test_a_failure_records_the_exception_type_a_bounded_message_and_its_runtime(make_schedule):
    """task-failed carries no runtime: it is taken from the start, even one seen in an earlier batch."""
    task_id = _run(make_schedule())
    _apply([_event("task-started", task_id, 2.0, hostname="celery@w1")])
    _apply([_event("task-failed", task_id, 4.0, hostname="celery@w1", exception=f"ValueError('{'x' * 2000}')")])
    record = _record(task_id)
    assert (record["state"], record["error_type"], record["runtime_seconds"]) == ("failed", "ValueError", 2.0)
    assert record["error_message"] == "x" * 1000


def test_a_retry_counts_and_the_final_outcome_wins(make_schedule):
    """Retried, received again as retry 1, then succeeded: the run shows one retry and its last error kept."""
    task_id = _run(make_schedule())
    _apply(
        [
            _event("task-started", task_id, 1.0, hostname="celery@w1"),
            _event("task-retried", task_id, 2.0, hostname="celery@w1", exception="TimeoutError('slow')"),
        ]
    )
    assert _record(task_id)["state"] == "retried"
    _apply([_event("task-received", task_id, 3.0, hostname="celery@w1", retries=1)])
    assert (_record(task_id)["state"], _record(task_id)["retries"]) == ("retried", 1)
    _apply([_event("task-succeeded", task_id, 6.0, hostname="celery@w1", runtime=1.0)])
    record = _record(task_id)
    assert (record["state"], record["retries"], record["runtime_seconds"]) == ("succeeded", 1, 1.0)
    assert (record["error_type"], record["error_message"]) == ("TimeoutError", "slow")


@pytest.mark.parametrize(("fields", "state"), [({"expired": True}, "expired"), ({"terminated": True}, "revoked")])
def test_a_revoked_message_is_expired_when_the_worker_says_so(make_schedule, fields, state):
    task_id = _run(make_schedule())
    _apply([_event("task-revoked", task_id, 1.0, hostname="celery@w1", **fields)])
    assert _record(task_id)["state"] == state
    _apply([_event("task-succeeded", task_id, 2.0, hostname="celery@w1", runtime=1.0)])
    assert _record(task_id)["state"] == state, "a terminal state is final"


def test_events_of_tasks_that_are_no_run_change_nothing(make_schedule):
    task_id = _run(make_schedule())
    _apply(_life(str(uuid.uuid4())) + [{"type": "worker-heartbeat", "hostname": "celery@w1"}])
    assert _record(task_id)["state"] == "sent"


def test_runs_never_received_turn_lost_only_when_the_monitor_was_listening(make_schedule):
    """Sent before the monitor listened: left `sent` (it may have been received unseen)."""
    schedule = make_schedule()
    unseen = _run(schedule, slot=T0)
    lost = _run(schedule, slot=T0 + timedelta(minutes=1))
    received = _run(schedule, slot=T0 + timedelta(minutes=2))
    recent = _run(schedule, slot=T0 + timedelta(minutes=9))
    _apply([_event("task-received", received, 130, hostname="celery@w1")])
    marked = services.runs_mark_lost(sent_before=T0 + timedelta(minutes=5), sent_since=T0 + timedelta(seconds=30))
    assert marked == 1
    states = {task_id: _record(task_id)["state"] for task_id in (unseen, lost, received, recent)}
    assert states == {unseen: "sent", lost: "lost", received: "received", recent: "sent"}
    _apply([_event("task-received", lost, 400, hostname="celery@w2")])
    assert _record(lost)["state"] == "received", "a worker's word wins over lost"


def test_prune_deletes_every_run_older_than_the_cutoff_in_chunks(make_schedule):
    schedule = make_schedule()
    old = [_run(schedule, slot=T0 + timedelta(seconds=second)) for second in range(7)]
    kept = _run(schedule, slot=T0 + timedelta(hours=1))
    assert services.runs_prune(sent_before=T0 + timedelta(minutes=1), chunk=3) == len(old)
    assert list(Dispatch.objects.values_list("task_id", flat=True)) == [kept]


def test_run_now_records_a_run_now_run_before_it_sends(make_schedule, actor, django_capture_on_commit_callbacks):
    schedule = make_schedule()
    with django_capture_on_commit_callbacks():
        task_id = services.schedule_run_now(actor=actor, schedule=schedule)
    run = Dispatch.objects.get(task_id=task_id)
    assert (run.trigger, run.state, run.periodic_task_name) == ("run_now", "sent", schedule.periodic_task.name)
    assert run.slot == run.sent_at


def test_the_stock_schedulers_publish_signal_records_beat_messages_only(make_schedule):
    """Under -S django, a message with django-celery-beat's header is a run whose slot is the
    send second; a message without it (run-now, other tasks) is not recorded again."""
    schedule = make_schedule()
    task_id = str(uuid.uuid4())
    run_signals.record_send(headers={"id": task_id, "periodic_task_name": schedule.periodic_task.name})
    run_signals.record_send(headers={"id": str(uuid.uuid4())})
    run = Dispatch.objects.get()
    assert (run.task_id, run.trigger, run.state) == (task_id, "schedule", "sent")
    assert run.slot == run.sent_at.replace(microsecond=0)


def test_the_publish_signal_records_only_in_a_stock_scheduler_beat(make_schedule):
    """The web process and a fleet-scheduler beat record nothing on publish (the fleet scheduler
    claims its own); a beat on django-celery-beat's scheduler does."""
    name = make_schedule().periodic_task.name

    def publish():
        before_task_publish.send(sender="t", headers={"id": str(uuid.uuid4()), "periodic_task_name": name})
        return Dispatch.objects.count()

    before_task_publish.disconnect(dispatch_uid="luffy-record-send")
    try:
        run_signals.record_sends_under_the_stock_scheduler(sender=SimpleNamespace(scheduler=object()))
        assert publish() == 0
        stock = DatabaseScheduler.__new__(DatabaseScheduler)
        run_signals.record_sends_under_the_stock_scheduler(sender=SimpleNamespace(scheduler=stock))
        assert publish() == 1
    finally:
        before_task_publish.disconnect(dispatch_uid="luffy-record-send")
