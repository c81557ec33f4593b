"""The write path at the edges production reaches: caps, scale, concurrency and hostile text."""

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask, PeriodicTasks

from schedules import services
from schedules.errors import ConflictError
from schedules.models import AuditEvent, Service, TaskSchedule

pytestmark = pytest.mark.django_db


def test_creates_past_the_per_service_cap_are_refused_with_a_reason(make_schedule, settings):
    """LUFFY_MAX_SCHEDULES_PER_SERVICE bounds one service; the refusal names the setting and writes nothing."""
    settings.LUFFY_MAX_SCHEDULES_PER_SERVICE = 2
    make_schedule(cron_expression="0 * * * *")
    make_schedule(cron_expression="5 * * * *")
    rows = (PeriodicTask.objects.count(), TaskSchedule.objects.count(), AuditEvent.objects.count())
    with pytest.raises(ConflictError) as excinfo:
        make_schedule(cron_expression="10 * * * *")
    assert excinfo.value.detail == (
        "Service 'web-app' has 2 schedules, the most one service may have "
        "(LUFFY_MAX_SCHEDULES_PER_SERVICE); delete one first."
    )
    assert (PeriodicTask.objects.count(), TaskSchedule.objects.count(), AuditEvent.objects.count()) == rows


def _delete_queries(actor, make_service, make_schedule, count: int, service_id: str) -> int:
    service = make_service(service_id=service_id)
    for minute in range(count):
        make_schedule(target=service, cron_expression=f"{minute} * * * *")
    with CaptureQueriesContext(connection) as queries:
        services.service_delete(actor=actor, service=service)
    return len(queries)


def test_service_delete_costs_the_same_queries_for_2_or_40_schedules(actor, make_service, make_schedule, settings):
    """Set-based: deleting a service with many schedules is not one round trip per schedule."""
    settings.LUFFY_MAX_SCHEDULES_PER_SERVICE = 100
    few = _delete_queries(actor, make_service, make_schedule, 2, "few")
    many = _delete_queries(actor, make_service, make_schedule, 40, "many")
    assert many == few


def test_service_delete_leaves_no_beat_rows_audits_each_schedule_and_bumps_beat_once(
    actor, make_service, make_schedule
):
    service = make_service(service_id="doomed")
    schedules = [make_schedule(target=service, cron_expression=f"{minute} * * * *") for minute in range(5)]
    other = make_schedule(cron_expression="0 0 * * *")
    stamp = PeriodicTasks.last_change()

    services.service_delete(actor=actor, service=service)

    assert list(PeriodicTask.objects.values_list("pk", flat=True)) == [other.periodic_task_id]
    assert list(TaskSchedule.objects.values_list("pk", flat=True)) == [other.pk]
    assert not Service.objects.filter(pk="doomed").exists()
    deleted = AuditEvent.objects.filter(service_id="doomed", action="delete")
    assert sorted(str(event.schedule_id) for event in deleted if event.target == "schedule") == sorted(
        str(schedule.pk) for schedule in schedules
    )
    assert deleted.get(target="service").before == {"id": "doomed", "name": "Web application", "description": ""}
    assert deleted.get(schedule_id=schedules[0].pk).before["cron_expression"] == "0 * * * *"
    assert PeriodicTasks.last_change() > stamp


@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_with_a_new_timing_share_one_timing_row(actor):
    """Eight services created at once on a timing nobody uses yet: one CrontabSchedule and one
    IntervalSchedule row between them, not one per racer."""
    targets = [services.service_create(actor=actor, service_id=f"racer-{n}", name="Racer") for n in range(8)]
    barrier = threading.Barrier(len(targets))
    errors = []

    def create(service):
        try:
            barrier.wait()
            services.schedule_create(actor=actor, service=service, task_name="fetch_logs", cron_expression="7 7 * * *")
            services.schedule_create(
                actor=actor, service=service, task_name="index_code", schedule_type="interval", interval_seconds=4321
            )
        except Exception as exc:  # reported below with the others
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=(service,)) for service in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert CrontabSchedule.objects.filter(minute="7", hour="7").count() == 1
    assert IntervalSchedule.objects.filter(every=4321).count() == 1
    assert TaskSchedule.objects.count() == 16


def test_switching_to_an_interval_never_drops_a_time_zone_silently(make_schedule, actor):
    """A Europe/Paris cron schedule switched to an interval without a time zone is refused with
    the way out; sending timezone UTC with the switch works."""
    schedule = make_schedule(cron_expression="0 9 * * *", timezone="Europe/Paris")
    with pytest.raises(ValidationError) as excinfo:
        services.schedule_update(actor=actor, schedule=schedule, schedule_type="interval", interval_seconds=900)
    assert excinfo.value.message_dict == {
        "timezone": [
            "This schedule's time zone is Europe/Paris; an interval schedule runs in UTC. "
            'Send timezone "UTC" with the switch to an interval.'
        ]
    }
    updated = services.schedule_update(
        actor=actor, schedule=schedule, schedule_type="interval", interval_seconds=900, timezone="UTC"
    )
    assert updated.periodic_task.interval.every == 900


def test_a_utc_cron_schedule_switches_to_an_interval_without_naming_the_zone(make_schedule, actor):
    schedule = make_schedule(cron_expression="0 9 * * *")
    updated = services.schedule_update(actor=actor, schedule=schedule, schedule_type="interval", interval_seconds=900)
    assert updated.periodic_task.interval.every == 900


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "Web\x00app"),
        ("name", "\x1b[31mred\x1b[0m"),
        ("name", "line\nbreak"),
        ("name", "evil\u202etxt.exe"),
        ("name", "c1\x9bcontrol"),
        ("description", "\x1b]0;title\x07"),
        ("description", "isolate\u2066x\u2069"),
        ("description", "del\x7f"),
    ],
)
def test_control_characters_and_bidi_overrides_are_refused_in_service_text(actor, field, value):
    fields = {"name": "Web application", "description": "", field: value}
    with pytest.raises(ValidationError) as excinfo:
        services.service_create(actor=actor, service_id="web-app", **fields)
    [message] = excinfo.value.message_dict[field]
    assert message.startswith("Control characters, escape sequences and bidi overrides are not allowed (found U+")
    assert not Service.objects.exists()


def test_descriptions_keep_line_breaks_and_tabs(actor):
    service = services.service_create(
        actor=actor, service_id="web-app", name="Web — app ✓", description="Line one\n\tLine two\r\n"
    )
    assert service.description == "Line one\n\tLine two\r\n"
