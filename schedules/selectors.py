"""Reads. Lists fetch their beat rows in the same query, so a page costs a constant number of queries."""

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db.models import BigIntegerField, Case, Count, F, Func, Q, QuerySet, When
from django.db.models.functions import Coalesce, Mod
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from . import beat_rows, load, timing
from .models import AuditEvent, BeatHeartbeat, Dispatch, IdempotencyRecord, Service, TaskSchedule


def schedule_next_run(schedule: TaskSchedule) -> datetime | None:
    """When beat will send it next; None while disabled."""
    periodic_task = schedule.periodic_task
    if not periodic_task.enabled:
        return None
    anchor = periodic_task.last_run_at or periodic_task.date_changed
    return timing.next_run(beat_rows.timing_of(periodic_task), anchor=anchor)


def _schedules() -> QuerySet[TaskSchedule]:
    return TaskSchedule.objects.select_related("service", "periodic_task__crontab", "periodic_task__interval")


def schedule_list(*, service: Service | None = None, task_name: str | None = None, enabled: bool | None = None):
    schedules = _schedules()
    if service is not None:
        schedules = schedules.filter(service=service)
    if task_name is not None:
        schedules = schedules.filter(task_name=task_name)
    if enabled is not None:
        schedules = schedules.filter(periodic_task__enabled=enabled)
    return schedules


def schedule_get(schedule_id) -> TaskSchedule | None:
    try:
        return _schedules().filter(pk=schedule_id).first()
    except ValidationError:
        return None  # not a UUID: no such schedule


def service_list():
    # Meta.ordering does not survive the GROUP BY of the count; pages need a stable order.
    return Service.objects.annotate(schedule_count=Count("schedules")).order_by("id")


def service_get(service_id: str) -> Service | None:
    return Service.objects.filter(pk=service_id).first()


def schedule_history(schedule_id) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(schedule_id=schedule_id).order_by("-at", "-id")


def service_history(service_id: str) -> QuerySet[AuditEvent]:
    """The service's own changes and its schedules', newest first."""
    return AuditEvent.objects.filter(service_id=service_id).order_by("-at", "-id")


def beat_heartbeat_get() -> BeatHeartbeat | None:
    return BeatHeartbeat.objects.filter(pk=1).first()


def schedule_recent_dispatches(schedule: TaskSchedule, limit: int = 10) -> QuerySet[Dispatch]:
    """What beat last sent for the schedule (slot, task id, sent at), newest slot first."""
    return Dispatch.objects.filter(periodic_task_name=schedule.periodic_task.name).order_by("-slot")[:limit]


# --- beat rows a service schedule owns ---------------------------------------------------------
# The one definition of ownership: a PeriodicTask is owned when a TaskSchedule points at it; a
# timing row (CrontabSchedule, IntervalSchedule) when an owned PeriodicTask uses it. Owned rows
# change only through services.py; django-celery-beat's admin reads these to keep its hands off.

_OWNED = Q(luffy_schedule__isnull=False)


def owned_periodic_tasks(periodic_tasks: QuerySet[PeriodicTask] | None = None) -> QuerySet[PeriodicTask]:
    """The beat entries service schedules own, among ``periodic_tasks`` (default: all of them)."""
    return (PeriodicTask.objects.all() if periodic_tasks is None else periodic_tasks).filter(_OWNED)


def unowned_periodic_tasks(periodic_tasks: QuerySet[PeriodicTask] | None = None) -> QuerySet[PeriodicTask]:
    """The beat entries no service schedule owns, among ``periodic_tasks`` (default: all of them)."""
    return (PeriodicTask.objects.all() if periodic_tasks is None else periodic_tasks).exclude(_OWNED)


def beat_row_is_owned(row: PeriodicTask | CrontabSchedule | IntervalSchedule) -> bool:
    """Whether a service schedule owns this beat entry, or uses this timing row through its entry."""
    if isinstance(row, PeriodicTask):
        return owned_periodic_tasks(PeriodicTask.objects.filter(pk=row.pk)).exists()
    return owned_periodic_tasks(row.periodictask_set.all()).exists()


def idempotency_record_get(*, actor: str, key: str, since: datetime) -> IdempotencyRecord | None:
    """The first answer to the caller's ``key``, if it is younger than ``since``."""
    return IdempotencyRecord.objects.filter(actor=actor, key=key, created_at__gte=since).first()


# --- upcoming load ---------------------------------------------------------------------------


class _EpochSeconds(Func):
    """Whole seconds since 1970 of a timestamp (Django has no portable ``Extract("epoch")``)."""

    output_field = BigIntegerField()
    # FLOOR: a cast alone rounds, and a send at 12:00:07.6 falls in second 7.
    template = "CAST(FLOOR(EXTRACT(EPOCH FROM %(expressions)s)) AS BIGINT)"

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, template="CAST(strftime('%%s', %(expressions)s) AS INTEGER)")


def enabled_timing_groups() -> list[load.TimingGroup]:
    """Enabled schedules counted per task and distinct timing: one grouped query, then the few
    distinct timing rows it names by id.

    A cron timing is its crontab row (five fields and zone); an interval is its period and its
    phase (the anchor beat counts from, modulo the period), so jittered intervals stay apart.
    Grouping by row ids, not by the rows' text, keeps the query cheap at 100k schedules.
    """
    anchor = Coalesce("periodic_task__last_run_at", "periodic_task__date_changed")
    rows = list(
        TaskSchedule.objects.filter(periodic_task__enabled=True)
        .annotate(
            # CASE, so cron rows (most of them) skip the arithmetic.
            phase=Case(
                When(
                    periodic_task__interval__isnull=False,
                    then=Mod(_EpochSeconds(anchor), F("periodic_task__interval__every")),
                ),
                output_field=BigIntegerField(),
            )
        )
        .values("task_name", "periodic_task__crontab_id", "periodic_task__interval_id", "phase")
        .annotate(count=Count("id"))
        .order_by()
    )
    crontabs = CrontabSchedule.objects.in_bulk({row["periodic_task__crontab_id"] for row in rows} - {None})
    intervals = IntervalSchedule.objects.in_bulk({row["periodic_task__interval_id"] for row in rows} - {None})
    groups = []
    for row in rows:
        crontab = crontabs.get(row["periodic_task__crontab_id"])
        interval = intervals.get(row["periodic_task__interval_id"])
        groups.append(
            load.TimingGroup(
                task_name=row["task_name"],
                cron_expression=beat_rows.crontab_row_expression(crontab) if crontab else None,
                timezone=str(crontab.timezone) if crontab else timing.UTC,
                interval_seconds=interval.every if interval else None,
                phase=row["phase"],
                count=row["count"],
            )
        )
    return groups


def upcoming_load(*, hours: int, resolution: str, now: datetime | None = None) -> load.Load:
    """What beat will send in the next ``hours``, per ``resolution`` bucket, stacked by task."""
    return load.upcoming_load(enabled_timing_groups(), now=now or timezone.now(), hours=hours, resolution=resolution)
