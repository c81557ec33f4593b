"""The write path against the real database: every operation, its beat rows and its audit."""

import json
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db.models import ProtectedError
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask, PeriodicTasks
from django_celery_beat.schedulers import ModelEntry

from luffy_admin.celery import app as celery_app
from schedules import beat_rows, selectors, services
from schedules.errors import ConflictError
from schedules.models import AuditEvent, Service, TaskSchedule
from schedules.services import audit

pytestmark = pytest.mark.django_db


def _beat_rows():
    return (PeriodicTask.objects.count(), TaskSchedule.objects.count())


def test_create_writes_the_beat_entry_from_the_catalogue(make_schedule):
    """The PeriodicTask carries the catalogue's Celery task, queue, [service_id] and the timing."""
    schedule = make_schedule(cron_expression="*/15 * * * *", timezone="Europe/Paris")
    periodic_task = PeriodicTask.objects.get(pk=schedule.periodic_task_id)
    assert periodic_task.name == f"luffy:web-app:{schedule.pk}"
    assert periodic_task.task == "src.services.tasks.fetch_and_process_logs"
    assert json.loads(periodic_task.args) == ["web-app"]
    assert periodic_task.queue == "default"
    assert periodic_task.enabled is True
    assert periodic_task.interval is None
    crontab = periodic_task.crontab
    assert (crontab.minute, crontab.hour, crontab.day_of_month, crontab.month_of_year, crontab.day_of_week) == (
        "*/15",
        "*",
        "*",
        "*",
        "*",
    )
    assert str(crontab.timezone) == "Europe/Paris"
    assert periodic_task.description == "Every 15 minutes"


def test_create_interval_schedule_stores_seconds(make_schedule):
    schedule = make_schedule(schedule_type="interval", interval_seconds=900)
    interval = PeriodicTask.objects.get(pk=schedule.periodic_task_id).interval
    assert (interval.every, interval.period) == (900, IntervalSchedule.SECONDS)
    assert beat_rows.timing_of(schedule.periodic_task).interval_seconds == 900


def test_two_schedules_of_one_task_get_distinct_beat_entries(make_schedule):
    """The seed's `task_service` name collided; ours is unique per schedule."""
    first = make_schedule(cron_expression="0 * * * *")
    second = make_schedule(cron_expression="30 * * * *")
    assert first.periodic_task.name != second.periodic_task.name


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"task_name": "deploy"}, {"task_name"}),
        ({"cron_expression": "61 * * * *"}, {"cron_expression"}),
        ({"cron_expression": "0 0 30 2 *"}, {"cron_expression"}),
        ({"schedule_type": "weekly"}, {"schedule_type"}),
        ({"schedule_type": "interval", "interval_seconds": 59}, {"interval_seconds"}),
        ({"schedule_type": "interval", "interval_seconds": 86401}, {"interval_seconds"}),
        ({"schedule_type": "interval", "interval_seconds": True}, {"interval_seconds"}),
        ({"schedule_type": "interval", "interval_seconds": 900.0}, {"interval_seconds"}),
        ({"schedule_type": "interval", "interval_seconds": "900"}, {"interval_seconds"}),
        ({"schedule_type": "interval"}, {"interval_seconds"}),
        ({"schedule_type": "interval", "interval_seconds": 900, "cron_expression": "* * * * *"}, {"cron_expression"}),
        ({"cron_expression": "* * * * *", "interval_seconds": 900}, {"interval_seconds"}),
        ({"timezone": "Mars/Olympus"}, {"timezone"}),
        ({"enabled": "yes"}, {"enabled"}),
    ],
)
def test_invalid_create_writes_nothing(actor, service, fields, errors):
    """Bad input raises a field-keyed ValidationError and leaves no row anywhere."""
    fields = {"task_name": "fetch_logs", "cron_expression": "*/5 * * * *", **fields}
    if fields.get("schedule_type") == "interval" and fields["cron_expression"] == "*/5 * * * *":
        fields.pop("cron_expression")
    with pytest.raises(ValidationError) as excinfo:
        services.schedule_create(actor=actor, service=service, **fields)
    assert set(excinfo.value.message_dict) == errors
    assert _beat_rows() == (0, 0)
    assert not AuditEvent.objects.filter(target="schedule").exists()


def test_exact_duplicate_is_refused(make_schedule, actor, service):
    make_schedule(cron_expression="*/15 * * * *")
    with pytest.raises(ConflictError):
        services.schedule_create(actor=actor, service=service, task_name="fetch_logs", cron_expression="*/15  * * * *")
    # Same timing in another time zone, or for another task, is a different schedule.
    make_schedule(cron_expression="*/15 * * * *", timezone="Europe/Paris")
    make_schedule(task_name="generate_rca", cron_expression="*/15 * * * *")
    assert _beat_rows() == (3, 3)


def test_update_changes_only_the_given_fields(make_schedule, actor):
    """The seed's PUT reset unspecified fields; ours keeps them."""
    schedule = make_schedule(cron_expression="*/15 * * * *", timezone="Europe/Paris", enabled=False)
    services.schedule_update(actor=actor, schedule=schedule, cron_expression="*/30 * * * *")
    schedule.refresh_from_db()
    current = beat_rows.timing_of(schedule.periodic_task)
    assert (current.cron_expression, current.timezone) == ("*/30 * * * *", "Europe/Paris")
    assert schedule.periodic_task.enabled is False
    assert schedule.task_name == "fetch_logs"


def test_switching_type_clears_the_other_field(make_schedule, actor):
    schedule = make_schedule(cron_expression="*/15 * * * *")
    services.schedule_update(actor=actor, schedule=schedule, schedule_type="interval", interval_seconds=600)
    periodic_task = PeriodicTask.objects.get(pk=schedule.periodic_task_id)
    assert periodic_task.crontab is None
    assert periodic_task.interval.every == 600
    services.schedule_update(actor=actor, schedule=schedule, schedule_type="cron", cron_expression="@hourly")
    periodic_task.refresh_from_db()
    assert periodic_task.interval is None
    assert periodic_task.crontab.minute == "0"


def test_update_into_an_existing_timing_is_a_conflict(make_schedule, actor):
    make_schedule(cron_expression="0 * * * *")
    other = make_schedule(cron_expression="30 * * * *")
    with pytest.raises(ConflictError):
        services.schedule_update(actor=actor, schedule=other, cron_expression="0 * * * *")
    assert beat_rows.timing_of(other.periodic_task).cron_expression == "30 * * * *"


def test_failure_mid_sync_rolls_back_both_rows(actor, service, monkeypatch):
    """If anything fails after the PeriodicTask is written, neither row survives."""

    def broken_audit(**kwargs):
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(audit, "record", broken_audit)
    with pytest.raises(RuntimeError):
        services.schedule_create(actor=actor, service=service, task_name="fetch_logs", cron_expression="* * * * *")
    assert _beat_rows() == (0, 0)


def test_failed_update_leaves_the_beat_entry_as_it_was(make_schedule, actor, monkeypatch):
    schedule = make_schedule(cron_expression="*/15 * * * *")
    monkeypatch.setattr(audit, "record", lambda **kwargs: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        services.schedule_update(actor=actor, schedule=schedule, cron_expression="*/5 * * * *")
    schedule.refresh_from_db()
    assert PeriodicTask.objects.get(pk=schedule.periodic_task_id).crontab.minute == "*/15"


def test_delete_schedule_leaves_no_beat_row_but_keeps_shared_timing(make_schedule, make_service, actor):
    other_service = make_service("billing", "Billing")
    schedule = make_schedule(cron_expression="*/15 * * * *")
    survivor = make_schedule(target=other_service, cron_expression="*/15 * * * *")
    assert schedule.periodic_task.crontab_id == survivor.periodic_task.crontab_id
    services.schedule_delete(actor=actor, schedule=schedule)
    assert not PeriodicTask.objects.filter(name=f"luffy:web-app:{schedule.pk}").exists()
    assert not TaskSchedule.objects.filter(service_id="web-app").exists()
    assert PeriodicTask.objects.filter(pk=survivor.periodic_task_id).exists()
    assert CrontabSchedule.objects.filter(pk=survivor.periodic_task.crontab_id).exists()


def test_delete_service_removes_its_schedules_and_beat_rows(make_schedule, make_service, actor, service):
    make_schedule(cron_expression="*/15 * * * *")
    make_schedule(schedule_type="interval", interval_seconds=3600)
    other = make_schedule(target=make_service("billing", "Billing"))
    services.service_delete(actor=actor, service=service)
    assert not Service.objects.filter(pk="web-app").exists()
    assert list(PeriodicTask.objects.values_list("pk", flat=True)) == [other.periodic_task_id]
    assert list(TaskSchedule.objects.values_list("pk", flat=True)) == [other.pk]
    assert AuditEvent.objects.filter(service_id="web-app", action="delete").count() == 3


@pytest.mark.parametrize(
    "change",
    [
        lambda actor, schedule: services.schedule_update(actor=actor, schedule=schedule, cron_expression="*/5 * * * *"),
        lambda actor, schedule: services.schedule_set_enabled(actor=actor, schedule=schedule, enabled=False),
        lambda actor, schedule: services.schedule_delete(actor=actor, schedule=schedule),
        lambda actor, schedule: services.service_delete(actor=actor, service=schedule.service),
    ],
    ids=["update", "disable", "delete", "service-delete"],
)
def test_every_change_bumps_beat(make_schedule, actor, change):
    """django-celery-beat reloads only when PeriodicTasks.last_update moves."""
    schedule = make_schedule()
    PeriodicTasks.objects.update(last_update=timezone.now() - timedelta(hours=1))
    before = PeriodicTasks.last_change()
    change(actor, schedule)
    assert PeriodicTasks.last_change() > before


def test_no_op_update_does_not_touch_the_beat_entry(make_schedule, actor):
    """Saving the PeriodicTask would move its anchor and reload beat for nothing."""
    schedule = make_schedule(cron_expression="*/15 * * * *")
    changed_at = PeriodicTask.objects.get(pk=schedule.periodic_task_id).date_changed
    services.schedule_update(actor=actor, schedule=schedule, cron_expression="*/15 * * * *", enabled=True)
    assert PeriodicTask.objects.get(pk=schedule.periodic_task_id).date_changed == changed_at
    assert AuditEvent.objects.filter(action="update").count() == 0


def _beat_view(schedule):
    """What django-celery-beat's scheduler would decide for this row right now."""
    periodic_task = PeriodicTask.objects.get(pk=schedule.periodic_task_id)
    return ModelEntry(periodic_task, app=celery_app).is_due()


@pytest.mark.parametrize(
    "spec",
    [
        {"cron_expression": "* * * * *"},
        {"schedule_type": "interval", "interval_seconds": 60},
    ],
)
def test_create_is_not_due_now(make_schedule, spec):
    """A new schedule waits for the first slot after its creation: no immediate run."""
    schedule = make_schedule(**spec)
    due, _ = _beat_view(schedule)
    assert due is False
    next_run = selectors.schedule_next_run(schedule)
    assert timezone.now() < next_run <= timezone.now() + timedelta(seconds=60)


def test_timing_change_after_runs_does_not_catch_up(make_schedule, actor):
    """A schedule that last ran long ago must not fire at once when its timing changes."""
    schedule = make_schedule(schedule_type="interval", interval_seconds=3600)
    PeriodicTask.objects.filter(pk=schedule.periodic_task_id).update(
        last_run_at=timezone.now() - timedelta(hours=5), total_run_count=4
    )
    assert _beat_view(schedule)[0] is True
    services.schedule_update(actor=actor, schedule=schedule, interval_seconds=600)
    assert _beat_view(schedule)[0] is False
    periodic_task = PeriodicTask.objects.get(pk=schedule.periodic_task_id)
    assert periodic_task.total_run_count == 4
    assert selectors.schedule_next_run(selectors.schedule_get(schedule.pk)) == (
        periodic_task.date_changed + timedelta(seconds=600)
    )


def test_enable_is_not_due_now(make_schedule, actor):
    schedule = make_schedule(schedule_type="interval", interval_seconds=60, enabled=False)
    assert selectors.schedule_next_run(schedule) is None
    PeriodicTask.objects.filter(pk=schedule.periodic_task_id).update(date_changed=timezone.now() - timedelta(hours=2))
    services.schedule_set_enabled(actor=actor, schedule=schedule, enabled=True)
    assert _beat_view(schedule)[0] is False
    periodic_task = PeriodicTask.objects.get(pk=schedule.periodic_task_id)
    assert selectors.schedule_next_run(selectors.schedule_get(schedule.pk)) == (
        periodic_task.date_changed + timedelta(seconds=60)
    )


def test_audit_records_who_what_before_and_after(make_schedule, actor):
    schedule = make_schedule(cron_expression="*/15 * * * *")
    services.schedule_update(actor=actor, schedule=schedule, cron_expression="0 * * * *", timezone="Asia/Tokyo")
    services.schedule_set_enabled(actor=actor, schedule=schedule, enabled=False)
    events = list(selectors.schedule_history(schedule.pk))
    assert [event.action for event in events] == ["toggle", "update", "create"]
    toggle, update, create = events
    assert {event.actor for event in events} == {"system:tests"}
    assert create.before is None
    assert create.after == {
        "task_name": "fetch_logs",
        "schedule_type": "cron",
        "cron_expression": "*/15 * * * *",
        "interval_seconds": None,
        "jitter_seconds": None,
        "timezone": "UTC",
        "enabled": True,
        "key": None,
    }
    assert update.before == create.after
    assert update.after == {**create.after, "cron_expression": "0 * * * *", "timezone": "Asia/Tokyo"}
    assert (toggle.before["enabled"], toggle.after["enabled"]) == (True, False)


def test_deleting_a_shared_crontab_cannot_cascade_into_schedules(make_schedule):
    """django-celery-beat's admin deletes CrontabSchedules; that must not drop a service's schedule."""
    schedule = make_schedule(cron_expression="*/15 * * * *")
    with pytest.raises(ProtectedError):
        CrontabSchedule.objects.get(pk=schedule.periodic_task.crontab_id).delete()
    with pytest.raises(ProtectedError):
        PeriodicTask.objects.get(pk=schedule.periodic_task_id).delete()
    assert _beat_rows() == (1, 1)


def test_run_now_sends_after_commit_to_the_broker(make_schedule, actor, django_capture_on_commit_callbacks):
    """Run-now publishes the catalogue task with [service_id], only once the transaction commits."""
    schedule = make_schedule()
    with django_capture_on_commit_callbacks() as callbacks:
        task_id = services.schedule_run_now(actor=actor, schedule=schedule)
    assert len(callbacks) == 1
    with celery_app.connection_for_write() as connection:
        queue = connection.SimpleQueue("default")
        queue.clear()
        callbacks[0]()
        message = queue.get(timeout=5)
        message.ack()
        queue.close()
    assert message.headers["id"] == task_id
    assert message.headers["task"] == "src.services.tasks.fetch_and_process_logs"
    assert message.decode()[0] == ["web-app"]
    event = AuditEvent.objects.get(action="run_now")
    assert event.after == {"task_id": task_id}


def test_service_create_validates_the_slug(actor):
    with pytest.raises(ValidationError) as excinfo:
        services.service_create(actor=actor, service_id="Web App", name="x")
    assert set(excinfo.value.message_dict) == {"id"}
    with pytest.raises(ValidationError):
        services.service_create(actor=actor, service_id="-web", name="x")
    with pytest.raises(ValidationError):
        services.service_create(actor=actor, service_id="a" * 64, name="x")
    services.service_create(actor=actor, service_id="a" * 63, name="x")


def test_service_create_twice_conflicts_and_put_is_idempotent(actor, service):
    with pytest.raises(ConflictError):
        services.service_create(actor=actor, service_id="web-app", name="again")
    updated, created = services.service_put(actor=actor, service_id="web-app", name="Renamed")
    assert (created, updated.name) == (False, "Renamed")
    fresh, created = services.service_put(actor=actor, service_id="billing", name="Billing")
    assert created is True
    assert services.service_put(actor=actor, service_id="billing", name="Billing")[1] is False
    assert AuditEvent.objects.filter(service_id="billing").count() == 1
