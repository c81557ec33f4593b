"""Every write: services, schedules, their django-celery-beat rows, and the audit trail.

The API, the admin, management commands and tasks call these functions and nothing else
writes. Each runs in one transaction, so beat (which reads committed rows) sees a change
whole or not at all, and a failure anywhere leaves neither our row nor the PeriodicTask.
"""

import json
import uuid
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from celery import current_app as celery_app
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask, PeriodicTasks
from rest_framework_api_key.models import APIKey

from . import beat_rows, catalogue, health, messages, timing
from .errors import BrokerUnavailable, ConflictError
from .models import ApiKeyScope, AuditEvent, BeatHeartbeat, Service, TaskSchedule

UNSET: Any = object()
# The first key of the two-key advisory locks taken on timing rows (the second is the timing's hash).
TIMING_LOCK_SPACE = zlib.crc32(b"luffy-admin timing row") - 2**31
SCHEDULE_FIELDS = ("task_name", "schedule_type", "cron_expression", "interval_seconds", "timezone", "enabled")


@dataclass(frozen=True)
class Actor:
    """Who makes a change, as the audit trail records it."""

    label: str
    user: Any = None

    @classmethod
    def for_user(cls, user) -> "Actor":
        return cls(label=f"user:{user.get_username()}", user=user)

    @classmethod
    def for_api_key(cls, api_key) -> "Actor":
        return cls(label=f"api-key:{api_key.name}")

    @classmethod
    def system(cls, name: str) -> "Actor":
        return cls(label=f"system:{name}")


# --- audit --------------------------------------------------------------------------------


def _audit_event(
    *, actor: Actor, action: str, target: str, service_id: str, schedule_id=None, before=None, after=None
) -> AuditEvent:
    return AuditEvent(
        actor=actor.label,
        user=actor.user,
        action=action,
        target=target,
        service_id=service_id,
        schedule_id=schedule_id,
        before=before,
        after=after,
    )


def _audit(**fields) -> AuditEvent:
    event = _audit_event(**fields)
    event.save(force_insert=True)
    return event


def _service_snapshot(service: Service) -> dict:
    return {"id": service.id, "name": service.name, "description": service.description}


def schedule_snapshot(schedule: TaskSchedule) -> dict:
    current = beat_rows.timing_of(schedule.periodic_task)
    return {
        "task_name": schedule.task_name,
        "schedule_type": current.schedule_type,
        "cron_expression": current.cron_expression,
        "interval_seconds": current.interval_seconds,
        "timezone": current.timezone,
        "enabled": schedule.periodic_task.enabled,
    }


# --- services -----------------------------------------------------------------------------


@transaction.atomic
def service_create(*, actor: Actor, service_id: str, name: str, description: str = "") -> Service:
    service = Service(id=service_id, name=name, description=description)
    service.full_clean(validate_unique=False)
    try:
        with transaction.atomic():
            service.save(force_insert=True)
    except IntegrityError:
        raise ConflictError(f"Service {service_id!r} already exists.", existing_id=service_id) from None
    _audit(
        actor=actor,
        action=AuditEvent.Action.CREATE,
        target=AuditEvent.Target.SERVICE,
        service_id=service.id,
        after=_service_snapshot(service),
    )
    return service


@transaction.atomic
def service_update(*, actor: Actor, service: Service, name: str = UNSET, description: str = UNSET) -> Service:
    service = Service.objects.select_for_update().get(pk=service.pk)
    before = _service_snapshot(service)
    if name is not UNSET:
        service.name = name
    if description is not UNSET:
        service.description = description
    service.full_clean(validate_unique=False)
    after = _service_snapshot(service)
    if after != before:
        service.save()
        _audit(
            actor=actor,
            action=AuditEvent.Action.UPDATE,
            target=AuditEvent.Target.SERVICE,
            service_id=service.id,
            before=before,
            after=after,
        )
    return service


@transaction.atomic
def service_put(*, actor: Actor, service_id: str, name: str, description: str = "") -> tuple[Service, bool]:
    """Create the service or replace its fields; returns (service, created). Idempotent."""
    existing = Service.objects.select_for_update().filter(pk=service_id).first()
    if existing is not None:
        return service_update(actor=actor, service=existing, name=name, description=description), False
    try:
        return service_create(actor=actor, service_id=service_id, name=name, description=description), True
    except ConflictError:
        # Created concurrently between our look-up and insert: this PUT is then an update.
        existing = Service.objects.select_for_update().get(pk=service_id)
        return service_update(actor=actor, service=existing, name=name, description=description), False


@transaction.atomic
def service_delete(*, actor: Actor, service: Service) -> None:
    """Delete the service, its schedules and their beat rows, together.

    Set-based, whatever the number of schedules: the audit rows in one insert, the beat rows in
    one delete (no per-row signals, each of which would bump django-celery-beat's change stamp)
    and a single change bump at the end.
    """
    service = Service.objects.select_for_update().get(pk=service.pk)
    schedules = list(
        TaskSchedule.objects.filter(service=service).select_related("periodic_task__crontab", "periodic_task__interval")
    )
    AuditEvent.objects.bulk_create(
        [
            _audit_event(
                actor=actor,
                action=AuditEvent.Action.DELETE,
                target=AuditEvent.Target.SCHEDULE,
                service_id=service.id,
                schedule_id=schedule.pk,
                before=schedule_snapshot(schedule),
            )
            for schedule in schedules
        ]
        + [
            _audit_event(
                actor=actor,
                action=AuditEvent.Action.DELETE,
                target=AuditEvent.Target.SERVICE,
                service_id=service.id,
                before=_service_snapshot(service),
            )
        ],
        batch_size=1000,
    )
    periodic_task_ids = [schedule.periodic_task_id for schedule in schedules]
    TaskSchedule.objects.filter(service=service)._raw_delete(TaskSchedule.objects.db)
    if periodic_task_ids:
        # Nothing else references a PeriodicTask (TaskSchedule's PROTECT link is gone above), so a
        # raw delete is safe; the timing rows stay, as they may be shared.
        PeriodicTask.objects.filter(pk__in=periodic_task_ids)._raw_delete(PeriodicTask.objects.db)
        PeriodicTasks.update_changed()
    service.delete()


# --- the TaskSchedule <-> PeriodicTask sync -----------------------------------------------


def _beat_entry_name(*, service_id: str, schedule_id) -> str:
    """Unique and stable for the schedule's life, readable in beat's log."""
    return f"luffy:{service_id}:{schedule_id}"


def _timing_rows(new: timing.Timing, periodic_task: PeriodicTask | None):
    """The (crontab, interval) rows for ``new``, reusing shared rows; never deletes one."""
    if new.schedule_type == timing.INTERVAL:
        spec, model, field = beat_rows.interval_spec(new), IntervalSchedule, "interval"
    else:
        spec, model, field = beat_rows.crontab_spec(new), CrontabSchedule, "crontab"
    current = getattr(periodic_task, field) if periodic_task is not None else None
    if current is None or not beat_rows.row_matches(current, spec):
        _lock_timing(spec)
        current = model.objects.filter(**spec).order_by("pk").first() or model.objects.create(**spec)
    return (current, None) if field == "crontab" else (None, current)


def _lock_timing(spec: dict) -> None:
    """Serialise the get-or-create of one timing row: two concurrent creates with a new timing
    would otherwise both miss it and insert two (the tables have no unique constraint). A
    transaction-scoped advisory lock on PostgreSQL; SQLite serialises writers already."""
    if connection.vendor != "postgresql":
        return
    key = zlib.crc32(json.dumps(spec, sort_keys=True, default=str).encode())
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [TIMING_LOCK_SPACE, key - 2**31])


def _sync_periodic_task(
    *,
    periodic_task: PeriodicTask,
    service_id: str,
    schedule_id,
    task: catalogue.CatalogueTask,
    new_timing: timing.Timing,
    enabled: bool,
    restart_timing: bool,
) -> PeriodicTask:
    """Make the PeriodicTask match the schedule; save (and so bump beat) only on a change.

    ``restart_timing`` clears ``last_run_at`` so beat anchors on this save's
    ``date_changed``: the next run is the first slot of the timing after now, with no
    catch-up run for slots "missed" under the old timing.
    """
    crontab, interval = _timing_rows(new_timing, periodic_task if periodic_task.pk else None)
    desired = {
        "name": _beat_entry_name(service_id=service_id, schedule_id=schedule_id),
        "task": task.task,
        "args": json.dumps([service_id]),
        "kwargs": "{}",
        "queue": task.queue,
        "crontab_id": crontab.pk if crontab else None,
        "interval_id": interval.pk if interval else None,
        "solar_id": None,
        "clocked_id": None,
        "one_off": False,
        "start_time": None,
        "expires": None,
        "enabled": enabled,
        "description": new_timing.description,
    }
    changed = (
        periodic_task.pk is None
        or restart_timing
        or any(getattr(periodic_task, field) != value for field, value in desired.items())
    )
    if not changed:
        return periodic_task
    for field, value in desired.items():
        setattr(periodic_task, field, value)
    periodic_task.crontab, periodic_task.interval = crontab, interval
    if restart_timing:
        periodic_task.last_run_at = None
    # PeriodicTask.save() bumps PeriodicTasks.last_update, which is how beat notices.
    periodic_task.save()
    return periodic_task


def _lock_service(service_id: str) -> Service:
    """Serialise writes to one service's schedules (duplicate check, concurrent updates)."""
    return Service.objects.select_for_update().get(pk=service_id)


def _require_task(task_name) -> catalogue.CatalogueTask:
    task = catalogue.get_task(task_name) if isinstance(task_name, str) else None
    if task is None:
        raise ValidationError({"task_name": [messages.unknown_task(task_name)]})
    return task


def _require_bool(value, field: str) -> bool:
    if type(value) is not bool:
        raise ValidationError({field: [messages.not_a_boolean(field)]})
    return value


def _refuse_over_cap(service: Service) -> None:
    cap = settings.LUFFY_MAX_SCHEDULES_PER_SERVICE
    if TaskSchedule.objects.filter(service=service).count() >= cap:
        raise ConflictError(
            f"Service {service.id!r} has {cap} schedules, the most one service may have "
            "(LUFFY_MAX_SCHEDULES_PER_SERVICE); delete one first."
        )


def _refuse_duplicate(*, service: Service, task_name: str, new_timing: timing.Timing, exclude=None):
    candidates = TaskSchedule.objects.filter(
        service=service, task_name=task_name, **beat_rows.timing_lookup(new_timing, prefix="periodic_task__")
    )
    if exclude is not None:
        candidates = candidates.exclude(pk=exclude.pk)
    duplicate = candidates.first()
    if duplicate is not None:
        raise ConflictError(
            f"Service {service.id!r} already has this {task_name} schedule (id {duplicate.pk}).",
            existing_id=duplicate.pk,
        )


# --- schedules ----------------------------------------------------------------------------


def schedule_validate(
    *,
    service: Service,
    task_name,
    schedule_type,
    cron_expression,
    interval_seconds,
    timezone,
    enabled,
    schedule: TaskSchedule | None = None,
) -> tuple[catalogue.CatalogueTask, timing.Timing]:
    """Check a complete schedule as the write would store it; writes nothing.

    Raises what ``schedule_create`` / ``schedule_update`` raise for the same values
    (ValidationError by field, ConflictError for a duplicate of another schedule than
    ``schedule``), so a form can show the errors before it saves.
    """
    task = _require_task(task_name)
    new_timing = timing.validate_timing(
        task=task,
        schedule_type=schedule_type,
        cron_expression=cron_expression,
        interval_seconds=interval_seconds,
        timezone=timezone,
    )
    _require_bool(enabled, "enabled")
    _refuse_duplicate(service=service, task_name=task.name, new_timing=new_timing, exclude=schedule)
    return task, new_timing


@transaction.atomic
def schedule_create(
    *,
    actor: Actor,
    service: Service,
    task_name: str,
    schedule_type: str = timing.CRON,
    cron_expression: str | None = None,
    interval_seconds: int | None = None,
    timezone: str = timing.UTC,
    enabled: bool = True,
) -> TaskSchedule:
    service = _lock_service(service.pk)
    _refuse_over_cap(service)
    task, new_timing = schedule_validate(
        service=service,
        task_name=task_name,
        schedule_type=schedule_type,
        cron_expression=cron_expression,
        interval_seconds=interval_seconds,
        timezone=timezone,
        enabled=enabled,
    )

    schedule_id = uuid.uuid4()
    periodic_task = _sync_periodic_task(
        periodic_task=PeriodicTask(),
        service_id=service.id,
        schedule_id=schedule_id,
        task=task,
        new_timing=new_timing,
        enabled=enabled,
        restart_timing=True,
    )
    schedule = TaskSchedule.objects.create(
        id=schedule_id, service=service, task_name=task.name, periodic_task=periodic_task
    )
    _audit(
        actor=actor,
        action=AuditEvent.Action.CREATE,
        target=AuditEvent.Target.SCHEDULE,
        service_id=service.id,
        schedule_id=schedule.pk,
        after=schedule_snapshot(schedule),
    )
    return schedule


def _locked_schedule(schedule: TaskSchedule) -> TaskSchedule:
    _lock_service(schedule.service_id)
    return TaskSchedule.objects.select_related("service", "periodic_task__crontab", "periodic_task__interval").get(
        pk=schedule.pk
    )


@transaction.atomic
def schedule_update(*, actor: Actor, schedule: TaskSchedule, **changes) -> TaskSchedule:
    """Change only the given fields; switching type clears the other type's field.

    Accepts any of ``task_name``, ``schedule_type``, ``cron_expression``,
    ``interval_seconds``, ``timezone``, ``enabled``.
    """
    unknown = set(changes) - set(SCHEDULE_FIELDS)
    if unknown:
        raise ValidationError({field: ["Unknown field."] for field in sorted(unknown)})
    schedule = _locked_schedule(schedule)
    before = schedule_snapshot(schedule)

    new_type = changes.get("schedule_type", before["schedule_type"])
    if new_type == before["schedule_type"]:
        merged = {key: changes.get(key, before[key]) for key in ("cron_expression", "interval_seconds", "timezone")}
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
    timing_changed = new_timing != beat_rows.timing_of(schedule.periodic_task)

    _sync_periodic_task(
        periodic_task=schedule.periodic_task,
        service_id=schedule.service_id,
        schedule_id=schedule.pk,
        task=task,
        new_timing=new_timing,
        enabled=enabled,
        restart_timing=timing_changed or (enabled and not before["enabled"]),
    )
    schedule.task_name = task.name
    after = schedule_snapshot(schedule)
    if after != before:
        schedule.save()
        _audit(
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
def schedule_set_enabled(*, actor: Actor, schedule: TaskSchedule, enabled: bool) -> TaskSchedule:
    enabled = _require_bool(enabled, "enabled")
    schedule = _locked_schedule(schedule)
    before = schedule_snapshot(schedule)
    if before["enabled"] == enabled:
        return schedule
    _sync_periodic_task(
        periodic_task=schedule.periodic_task,
        service_id=schedule.service_id,
        schedule_id=schedule.pk,
        task=_require_task(schedule.task_name),
        new_timing=beat_rows.timing_of(schedule.periodic_task),
        enabled=enabled,
        restart_timing=enabled,
    )
    schedule.save(update_fields=["updated_at"])
    _audit(
        actor=actor,
        action=AuditEvent.Action.TOGGLE,
        target=AuditEvent.Target.SCHEDULE,
        service_id=schedule.service_id,
        schedule_id=schedule.pk,
        before=before,
        after=schedule_snapshot(schedule),
    )
    return schedule


def _schedule_delete_rows(*, actor: Actor, schedule: TaskSchedule) -> None:
    _audit(
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
def schedule_delete(*, actor: Actor, schedule: TaskSchedule) -> None:
    _schedule_delete_rows(actor=actor, schedule=_locked_schedule(schedule))


@transaction.atomic
def schedule_run_now(*, actor: Actor, schedule: TaskSchedule) -> str:
    """Send the task once, now, after commit; returns the Celery task id.

    The one run-now policy, for the API and the admin alike: a broker known to be down is
    refused up front (``BrokerUnavailable``) and leaves no audit event for a run that cannot
    happen; a send that still fails after commit marks its event ``sent: false`` and raises
    ``BrokerUnavailable``.
    """
    if health.check_broker(celery_app) == health.DOWN:
        raise BrokerUnavailable()
    schedule = _locked_schedule(schedule)
    task = _require_task(schedule.task_name)
    task_id = str(uuid.uuid4())
    event = _audit(
        actor=actor,
        action=AuditEvent.Action.RUN_NOW,
        target=AuditEvent.Target.SCHEDULE,
        service_id=schedule.service_id,
        schedule_id=schedule.pk,
        before=schedule_snapshot(schedule),
        after={"task_id": task_id},
    )

    def send():
        try:
            celery_app.send_task(task.task, args=[schedule.service_id], queue=task.queue, task_id=task_id)
        except Exception as exc:
            # The event is committed already; say on it that nothing was sent, then let the
            # caller report the failure.
            AuditEvent.objects.filter(pk=event.pk).update(
                after={"task_id": task_id, "sent": False, "error": str(exc) or type(exc).__name__}
            )
            raise BrokerUnavailable() from exc

    transaction.on_commit(send)
    return task_id


# --- beat heartbeat -----------------------------------------------------------------------


@transaction.atomic
def beat_heartbeat_record(*, worker: str, received_at: datetime) -> BeatHeartbeat:
    """Note that ``worker`` ran beat's heartbeat at ``received_at`` (one row, overwritten)."""
    heartbeat, _ = BeatHeartbeat.objects.update_or_create(pk=1, defaults={"worker": worker, "received_at": received_at})
    return heartbeat


# --- API keys -----------------------------------------------------------------------------


@transaction.atomic
def api_key_create(*, name: str, scopes: set[str]) -> tuple[APIKey, str]:
    """A new key with its scopes; returns the stored key and the key itself (shown once).

    ``write`` implies ``read`` and is stored so; ``run`` is granted only when named.
    """
    unknown = scopes - set(ApiKeyScope.NAMES)
    if unknown or not scopes:
        raise ValidationError(f"Scopes are {', '.join(ApiKeyScope.NAMES)}; got {', '.join(sorted(unknown)) or 'none'}.")
    api_key, key = APIKey.objects.create_key(name=name)
    ApiKeyScope.objects.create(
        api_key=api_key,
        read=bool(scopes & {ApiKeyScope.READ, ApiKeyScope.WRITE}),
        write=ApiKeyScope.WRITE in scopes,
        run=ApiKeyScope.RUN in scopes,
    )
    return api_key, key
