"""Writes to one schedule: create, update, enable/disable, delete."""

import uuid

from django.core.exceptions import ValidationError
from django.db import transaction
from django_celery_beat.models import PeriodicTask

from .. import beat_rows, timing
from ..models import AuditEvent, Service, TaskSchedule
from . import audit
from .audit import Actor, schedule_snapshot
from .beat_sync import sync_periodic_task
from .rules import (
    SCHEDULE_FIELDS,
    lock_service,
    refuse_over_cap,
    require_bool,
    require_task,
    schedule_validate,
    validate_key,
)
from .versions import check_if_match, schedule_etag


@transaction.atomic
def schedule_create(
    *,
    actor: Actor,
    service: Service,
    task_name: str,
    schedule_type: str = timing.CRON,
    cron_expression: str | None = None,
    interval_seconds: int | None = None,
    jitter_seconds: int | None = None,
    timezone: str = timing.UTC,
    enabled: bool = True,
    key: str | None = None,
) -> TaskSchedule:
    service = lock_service(service.pk)
    refuse_over_cap(service)
    key = validate_key(service=service, key=key)
    task, new_timing = schedule_validate(
        service=service,
        task_name=task_name,
        schedule_type=schedule_type,
        cron_expression=cron_expression,
        interval_seconds=interval_seconds,
        jitter_seconds=jitter_seconds,
        timezone=timezone,
        enabled=enabled,
    )

    schedule_id = uuid.uuid4()
    periodic_task = sync_periodic_task(
        periodic_task=PeriodicTask(),
        service_id=service.id,
        schedule_id=schedule_id,
        task=task,
        new_timing=new_timing,
        enabled=enabled,
        restart_timing=True,
    )
    schedule = TaskSchedule.objects.create(
        id=schedule_id,
        service=service,
        task_name=task.name,
        periodic_task=periodic_task,
        cron_expression_written=new_timing.written_cron_expression or "",
        jitter_seconds=new_timing.jitter_seconds,
        key=key,
    )
    audit.record(
        actor=actor,
        action=AuditEvent.Action.CREATE,
        target=AuditEvent.Target.SCHEDULE,
        service_id=service.id,
        schedule_id=schedule.pk,
        after=schedule_snapshot(schedule),
    )
    return schedule


def locked_schedule(schedule: TaskSchedule) -> TaskSchedule:
    lock_service(schedule.service_id)
    return TaskSchedule.objects.select_related("service", "periodic_task__crontab", "periodic_task__interval").get(
        pk=schedule.pk
    )


@transaction.atomic
def schedule_update(*, actor: Actor, schedule: TaskSchedule, if_match: str | None = None, **changes) -> TaskSchedule:
    """Change only the given fields; switching type clears the other type's field.

    Accepts any of ``task_name``, ``schedule_type``, ``cron_expression``,
    ``interval_seconds``, ``jitter_seconds``, ``timezone``, ``enabled``, ``key``. An ``H``
    expression is resolved again, for the schedule's task as it is after the change.
    """
    unknown = set(changes) - set(SCHEDULE_FIELDS)
    if unknown:
        raise ValidationError({field: ["Unknown field."] for field in sorted(unknown)})
    schedule = locked_schedule(schedule)
    check_if_match(if_match=if_match, current_etag=schedule_etag(schedule), what="schedule")
    before = schedule_snapshot(schedule)
    if "key" in changes:
        schedule.key = validate_key(service=schedule.service, key=changes["key"], schedule=schedule)

    new_type = changes.get("schedule_type", before["schedule_type"])
    if new_type == before["schedule_type"]:
        merged = {
            key: changes.get(key, before[key])
            for key in ("cron_expression", "interval_seconds", "jitter_seconds", "timezone")
        }
    else:
        if new_type == timing.INTERVAL and before["timezone"] != timing.UTC and "timezone" not in changes:
            # Intervals ignore time zones; say so instead of silently dropping the schedule's zone.
            raise ValidationError(
                {
                    "timezone": [
                        f"This schedule's time zone is {before['timezone']}; an interval schedule runs in UTC. "
                        'Send timezone "UTC" with the switch to an interval.'
                    ]
                }
            )
        merged = {
            "cron_expression": changes.get("cron_expression"),
            "interval_seconds": changes.get("interval_seconds"),
            "jitter_seconds": changes.get("jitter_seconds"),
            "timezone": changes.get("timezone", before["timezone"]),
        }
    enabled = changes.get("enabled", before["enabled"])
    task, new_timing = schedule_validate(
        service=schedule.service,
        task_name=changes.get("task_name", schedule.task_name),
        schedule_type=new_type,
        enabled=enabled,
        schedule=schedule,
        **merged,
    )
    timing_changed = new_timing != beat_rows.schedule_timing(schedule)

    sync_periodic_task(
        periodic_task=schedule.periodic_task,
        service_id=schedule.service_id,
        schedule_id=schedule.pk,
        task=task,
        new_timing=new_timing,
        enabled=enabled,
        restart_timing=timing_changed or (enabled and not before["enabled"]),
    )
    schedule.task_name = task.name
    schedule.cron_expression_written = new_timing.written_cron_expression or ""
    schedule.jitter_seconds = new_timing.jitter_seconds
    after = schedule_snapshot(schedule)
    if after != before:
        schedule.save()
        audit.record(
            actor=actor,
            action=AuditEvent.Action.UPDATE,
            target=AuditEvent.Target.SCHEDULE,
            service_id=schedule.service_id,
            schedule_id=schedule.pk,
            before=before,
            after=after,
        )
    return schedule


@transaction.atomic
def schedule_set_enabled(
    *, actor: Actor, schedule: TaskSchedule, enabled: bool, if_match: str | None = None
) -> TaskSchedule:
    enabled = require_bool(enabled, "enabled")
    schedule = locked_schedule(schedule)
    check_if_match(if_match=if_match, current_etag=schedule_etag(schedule), what="schedule")
    before = schedule_snapshot(schedule)
    if before["enabled"] == enabled:
        return schedule
    sync_periodic_task(
        periodic_task=schedule.periodic_task,
        service_id=schedule.service_id,
        schedule_id=schedule.pk,
        task=require_task(schedule.task_name),
        new_timing=beat_rows.schedule_timing(schedule),
        enabled=enabled,
        restart_timing=enabled,
    )
    schedule.save(update_fields=["updated_at"])
    audit.record(
        actor=actor,
        action=AuditEvent.Action.TOGGLE,
        target=AuditEvent.Target.SCHEDULE,
        service_id=schedule.service_id,
        schedule_id=schedule.pk,
        before=before,
        after=schedule_snapshot(schedule),
    )
    return schedule


def schedule_delete_rows(*, actor: Actor, schedule: TaskSchedule) -> None:
    audit.record(
        actor=actor,
        action=AuditEvent.Action.DELETE,
        target=AuditEvent.Target.SCHEDULE,
        service_id=schedule.service_id,
        schedule_id=schedule.pk,
        before=schedule_snapshot(schedule),
    )
    periodic_task = schedule.periodic_task
    schedule.delete()
    # Instance delete (not a queryset delete) so beat's change bump happens. The timing row
    # stays: it may be shared with other tasks.
    periodic_task.delete()


@transaction.atomic
def schedule_delete(*, actor: Actor, schedule: TaskSchedule, if_match: str | None = None) -> None:
    schedule = locked_schedule(schedule)
    check_if_match(if_match=if_match, current_etag=schedule_etag(schedule), what="schedule")
    schedule_delete_rows(actor=actor, schedule=schedule)
