"""Reads. Lists fetch their beat rows in the same query, so a page costs a constant number of queries."""

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from . import beat_rows, timing
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
