"""Every write: services, schedules, their django-celery-beat rows, and the audit trail.

The API, the admin, management commands and tasks call these functions and nothing else
writes. Each runs in one transaction, so beat (which reads committed rows) sees a change
whole or not at all, and a failure anywhere leaves neither our row nor the PeriodicTask.
"""

import hashlib
import json
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery import current_app as celery_app
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone as django_timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask, PeriodicTasks
from rest_framework_api_key.models import APIKey

from . import beat_rows, catalogue, health, messages, runs, selectors, timing
from .errors import BrokerUnavailable, ConflictError, IdempotencyKeyReused, PreconditionFailed
from .models import (
    ApiKeyScope,
    AuditEvent,
    BeatHeartbeat,
    Dispatch,
    IdempotencyRecord,
    MonitorHeartbeat,
    Service,
    TaskSchedule,
    schedule_key_validator,
)

UNSET: Any = object()
# The first key of the two-key advisory locks taken on timing rows (the second is the timing's hash).
TIMING_LOCK_SPACE = zlib.crc32(b"luffy-admin timing row") - 2**31
SCHEDULE_FIELDS = (
    "task_name",
    "schedule_type",
    "cron_expression",
    "interval_seconds",
    "jitter_seconds",
    "timezone",
    "enabled",
    "key",
)
# What makes two schedules of one service the same schedule when no key says so (the 409 rule).
SCHEDULE_IDENTITY = ("task_name", "schedule_type", "cron_expression", "interval_seconds", "timezone")
# How long an Idempotency-Key's first answer is replayed.
IDEMPOTENCY_TTL = timedelta(hours=24)


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
    current = beat_rows.schedule_timing(schedule)
    return {
        "task_name": schedule.task_name,
        "schedule_type": current.schedule_type,
        "cron_expression": current.shown_cron_expression,
        "interval_seconds": current.interval_seconds,
        "jitter_seconds": current.jitter_seconds,
        "timezone": current.timezone,
        "enabled": schedule.periodic_task.enabled,
        "key": schedule.key,
    }


# --- versions (ETag / If-Match) -----------------------------------------------------------


def _etag(snapshot: dict) -> str:
    digest = hashlib.sha256(json.dumps(snapshot, sort_keys=True).encode()).hexdigest()[:32]
    return f'"{digest}"'


def schedule_etag(schedule: TaskSchedule) -> str:
    """The schedule's version: what a caller can change (not run state: a dispatch moves
    ``last_run`` without changing it)."""
    return _etag(schedule_snapshot(schedule))


def service_etag(service: Service) -> str:
    """The service's version: its name and description (not its schedule count)."""
    return _etag(_service_snapshot(service))


def _check_if_match(*, if_match: str | None, current_etag: str | None, what: str) -> None:
    """Refuse a write whose ``If-Match`` (RFC 9110: a list of ETags, or ``*``) misses the
    current version; ``current_etag`` is None when the resource does not exist. Checked
    under the write's lock, so of two callers holding one version only the first wins."""
    if if_match is None:
        return
    wanted = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
    if current_etag is not None and ("*" in wanted or current_etag in wanted):
        return
    if current_etag is None:
        detail = f"The {what} does not exist (If-Match)."
    else:
        detail = f"The {what} changed since you read it (its ETag is now {current_etag}); read it again and retry."
    raise PreconditionFailed(detail, current_etag=current_etag)


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
def service_update(
    *, actor: Actor, service: Service, name: str = UNSET, description: str = UNSET, if_match: str | None = None
) -> Service:
    service = Service.objects.select_for_update().get(pk=service.pk)
    _check_if_match(if_match=if_match, current_etag=service_etag(service), what="service")
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
def service_put(
    *, actor: Actor, service_id: str, name: str, description: str = "", if_match: str | None = None
) -> tuple[Service, bool]:
    """Create the service or replace its fields; returns (service, created). Idempotent."""
    existing = Service.objects.select_for_update().filter(pk=service_id).first()
    if existing is not None:
        service = service_update(actor=actor, service=existing, name=name, description=description, if_match=if_match)
        return service, False
    _check_if_match(if_match=if_match, current_etag=None, what="service")
    try:
        return service_create(actor=actor, service_id=service_id, name=name, description=description), True
    except ConflictError:
        # Created concurrently between our look-up and insert: this PUT is then an update.
        existing = Service.objects.select_for_update().get(pk=service_id)
        return service_update(actor=actor, service=existing, name=name, description=description), False


@transaction.atomic
def service_delete(*, actor: Actor, service: Service, if_match: str | None = None) -> None:
    """Delete the service, its schedules and their beat rows, together.

    Set-based, whatever the number of schedules: the audit rows in one insert, the beat rows in
    one delete (no per-row signals, each of which would bump django-celery-beat's change stamp)
    and a single change bump at the end.
    """
    service = Service.objects.select_for_update().get(pk=service.pk)
    _check_if_match(if_match=if_match, current_etag=service_etag(service), what="service")
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

    An interval's jitter moves that anchor: ``date_changed`` is set its stable offset later.
    Both schedulers (django-celery-beat's ModelEntry and the fleet scheduler) anchor a
    never-run entry on ``date_changed``, so both send at change + offset + interval and keep
    that phase afterwards, while ``last_run_at`` stays empty (nothing ran).
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
    offset = timing.jitter_offset(new_timing, timing.schedule_key(service_id, task.name))
    if offset:
        # save() stamps date_changed with now (auto_now); only an update can set it later. The
        # save above already bumped beat's change stamp in this transaction.
        periodic_task.date_changed += timedelta(seconds=offset)
        PeriodicTask.objects.filter(pk=periodic_task.pk).update(date_changed=periodic_task.date_changed)
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


def _validate_key(*, service: Service, key, schedule: TaskSchedule | None = None) -> str | None:
    """A key is optional; when given, well formed and not another schedule's in the service."""
    if key is None:
        return None
    if not isinstance(key, str):
        raise ValidationError({"key": [messages.SCHEDULE_KEY]})
    try:
        schedule_key_validator(key)
    except ValidationError as exc:
        raise ValidationError({"key": exc.messages}) from None
    holder = TaskSchedule.objects.filter(service=service, key=key)
    if schedule is not None:
        holder = holder.exclude(pk=schedule.pk)
    existing = holder.first()
    if existing is not None:
        raise ConflictError(
            f"Service {service.id!r} already has a schedule with key {key!r} (id {existing.pk}).",
            existing_id=existing.pk,
        )
    return key


def _refuse_duplicate(*, service: Service, task_name: str, new_timing: timing.Timing, exclude=None):
    candidates = TaskSchedule.objects.filter(
        service=service, task_name=task_name, **beat_rows.timing_lookup(new_timing, prefix="periodic_task__")
    )
    if exclude is not None:
        candidates = candidates.exclude(pk=exclude.pk)
    duplicate = candidates.first()
    if duplicate is not None:
        hint = (
            " H resolves from the service and task, so the same expression lands on the same "
            "slots; place a second one with H(range) or plain values."
            if new_timing.written_cron_expression
            else ""
        )
        raise ConflictError(
            f"Service {service.id!r} already has this {task_name} schedule (id {duplicate.pk}).{hint}",
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
    jitter_seconds=None,
    schedule: TaskSchedule | None = None,
) -> tuple[catalogue.CatalogueTask, timing.Timing]:
    """Check a complete schedule as the write would store it; writes nothing.

    Raises what ``schedule_create`` / ``schedule_update`` raise for the same values
    (ValidationError by field, ConflictError for a duplicate of another schedule than
    ``schedule``), so a form can show the errors before it saves.

    A new schedule (``schedule`` None) sent without any timing gets its task's
    ``default_cron_expression`` when the catalogue gives one; an update never does, so
    clearing a field stays an error rather than a silent switch.
    """
    task = _require_task(task_name)
    no_timing = cron_expression in (None, "") and interval_seconds is None and jitter_seconds is None
    if schedule is None and schedule_type == timing.CRON and no_timing and task.default_cron_expression:
        cron_expression = task.default_cron_expression
    new_timing = timing.validate_timing(
        task=task,
        schedule_type=schedule_type,
        cron_expression=cron_expression,
        interval_seconds=interval_seconds,
        timezone=timezone,
        key=timing.schedule_key(service.id, task.name),
        jitter_seconds=jitter_seconds,
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
    jitter_seconds: int | None = None,
    timezone: str = timing.UTC,
    enabled: bool = True,
    key: str | None = None,
) -> TaskSchedule:
    service = _lock_service(service.pk)
    _refuse_over_cap(service)
    key = _validate_key(service=service, key=key)
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
        id=schedule_id,
        service=service,
        task_name=task.name,
        periodic_task=periodic_task,
        cron_expression_written=new_timing.written_cron_expression or "",
        jitter_seconds=new_timing.jitter_seconds,
        key=key,
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
def schedule_update(*, actor: Actor, schedule: TaskSchedule, if_match: str | None = None, **changes) -> TaskSchedule:
    """Change only the given fields; switching type clears the other type's field.

    Accepts any of ``task_name``, ``schedule_type``, ``cron_expression``,
    ``interval_seconds``, ``jitter_seconds``, ``timezone``, ``enabled``, ``key``. An ``H``
    expression is resolved again, for the schedule's task as it is after the change.
    """
    unknown = set(changes) - set(SCHEDULE_FIELDS)
    if unknown:
        raise ValidationError({field: ["Unknown field."] for field in sorted(unknown)})
    schedule = _locked_schedule(schedule)
    _check_if_match(if_match=if_match, current_etag=schedule_etag(schedule), what="schedule")
    before = schedule_snapshot(schedule)
    if "key" in changes:
        schedule.key = _validate_key(service=schedule.service, key=changes["key"], schedule=schedule)

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
    schedule.cron_expression_written = new_timing.written_cron_expression or ""
    schedule.jitter_seconds = new_timing.jitter_seconds
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
def schedule_set_enabled(
    *, actor: Actor, schedule: TaskSchedule, enabled: bool, if_match: str | None = None
) -> TaskSchedule:
    enabled = _require_bool(enabled, "enabled")
    schedule = _locked_schedule(schedule)
    _check_if_match(if_match=if_match, current_etag=schedule_etag(schedule), what="schedule")
    before = schedule_snapshot(schedule)
    if before["enabled"] == enabled:
        return schedule
    _sync_periodic_task(
        periodic_task=schedule.periodic_task,
        service_id=schedule.service_id,
        schedule_id=schedule.pk,
        task=_require_task(schedule.task_name),
        new_timing=beat_rows.schedule_timing(schedule),
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
def schedule_delete(*, actor: Actor, schedule: TaskSchedule, if_match: str | None = None) -> None:
    schedule = _locked_schedule(schedule)
    _check_if_match(if_match=if_match, current_etag=schedule_etag(schedule), what="schedule")
    _schedule_delete_rows(actor=actor, schedule=schedule)


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
    sent_at = django_timezone.now()
    run_record_sent(
        periodic_task_name=schedule.periodic_task.name,
        slot=sent_at,
        task_id=task_id,
        sent_at=sent_at,
        trigger=Dispatch.Trigger.RUN_NOW,
    )

    def send():
        try:
            celery_app.send_task(task.task, args=[schedule.service_id], queue=task.queue, task_id=task_id)
        except Exception as exc:
            # The event is committed already; say on it that nothing was sent, and drop the run
            # that never left, then let the caller report the failure.
            AuditEvent.objects.filter(pk=event.pk).update(
                after={"task_id": task_id, "sent": False, "error": str(exc) or type(exc).__name__}
            )
            Dispatch.objects.filter(task_id=task_id, trigger=Dispatch.Trigger.RUN_NOW).delete()
            raise BrokerUnavailable() from exc

    transaction.on_commit(send)
    return task_id


# --- the bulk replace (PUT /services/{id}/schedules, `manage.py schedules apply`) -----------

CREATED, UPDATED, DELETED, UNCHANGED = "created", "updated", "deleted", "unchanged"
CHANGE_ACTIONS = (CREATED, UPDATED, DELETED, UNCHANGED)


@dataclass(frozen=True)
class ScheduleChange:
    """What a replace did (or, on a dry run, would do) to one schedule."""

    action: str
    schedule_id: uuid.UUID | None
    before: dict | None
    after: dict | None


@dataclass(frozen=True)
class ScheduleSetResult:
    changes: list[ScheduleChange]
    dry_run: bool

    @property
    def summary(self) -> dict[str, int]:
        return {action: sum(change.action == action for change in self.changes) for action in CHANGE_ACTIONS}


def _prefixed(index: int, exc: ValidationError) -> ValidationError:
    """A desired schedule's errors, named by its place in the list: ``[2].cron_expression``."""
    by_field = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
    return ValidationError({f"[{index}].{name}": errors for name, errors in by_field.items()})


def _desired_state(item: dict, *, service_id: str) -> dict:
    """One desired schedule, validated and normalised to a snapshot (``@hourly`` -> ``0 * * * *``)."""
    unknown = set(item) - set(SCHEDULE_FIELDS)
    if unknown:
        raise ValidationError({name: ["Unknown field."] for name in sorted(unknown)})
    task = _require_task(item.get("task_name"))
    new_timing = timing.validate_timing(
        task=task,
        schedule_type=item.get("schedule_type", timing.CRON),
        cron_expression=item.get("cron_expression"),
        interval_seconds=item.get("interval_seconds"),
        timezone=item.get("timezone", timing.UTC),
        key=timing.schedule_key(service_id, task.name),
        jitter_seconds=item.get("jitter_seconds"),
    )
    key = item.get("key")
    if key is not None:
        if not isinstance(key, str):
            raise ValidationError({"key": [messages.SCHEDULE_KEY]})
        try:
            schedule_key_validator(key)
        except ValidationError as exc:
            raise ValidationError({"key": exc.messages}) from None
    return {
        "task_name": task.name,
        "schedule_type": new_timing.schedule_type,
        "cron_expression": new_timing.shown_cron_expression,
        "interval_seconds": new_timing.interval_seconds,
        "jitter_seconds": new_timing.jitter_seconds,
        "timezone": new_timing.timezone,
        "enabled": _require_bool(item.get("enabled", True), "enabled"),
        "key": key,
    }


def _identity(state: dict) -> tuple:
    return tuple(state[name] for name in SCHEDULE_IDENTITY)


def _desired_states(desired: list[dict], *, service_id: str) -> list[dict]:
    states = []
    for index, item in enumerate(desired):
        try:
            states.append(_desired_state(item, service_id=service_id))
        except ValidationError as exc:
            raise _prefixed(index, exc) from None
    seen_keys, seen_identities = {}, {}
    for index, state in enumerate(states):
        if state["key"] is not None:
            if state["key"] in seen_keys:
                first = seen_keys[state["key"]]
                raise ValidationError({f"[{index}].key": [f"Key {state['key']!r} is also [{first}]'s."]})
            seen_keys[state["key"]] = index
        elif _identity(state) in seen_identities:
            raise ValidationError(
                {f"[{index}]": [f"The same schedule as [{seen_identities[_identity(state)]}]; list it once."]}
            )
        else:
            seen_identities[_identity(state)] = index
    return states


def _match(states: list[dict], existing: dict[uuid.UUID, dict]) -> tuple[list[tuple[dict, Any]], list[Any]]:
    """Pair each desired state with the stored schedule it stands for: by key first, then by
    task and timing among the schedules without a key (or with the same key). Returns the pairs
    (``None`` where a schedule is to be created) and the stored ids nothing matched."""
    unmatched = dict(existing)
    partner: dict[int, Any] = {}
    for index, state in enumerate(states):
        if state["key"] is not None:
            found = next((pk for pk, stored in unmatched.items() if stored["key"] == state["key"]), None)
            if found is not None:
                partner[index] = found
                del unmatched[found]
    for index, state in enumerate(states):
        if index in partner:
            continue
        found = next(
            (
                pk
                for pk, stored in unmatched.items()
                if _identity(stored) == _identity(state) and stored["key"] in (None, state["key"])
            ),
            None,
        )
        if found is not None:
            partner[index] = found
            del unmatched[found]
    return [(state, partner.get(index)) for index, state in enumerate(states)], list(unmatched)


@transaction.atomic
def _schedule_set_replace(*, actor: Actor, service: Service, desired: list[dict], prune: bool) -> list[ScheduleChange]:
    service = _lock_service(service.pk)
    states = _desired_states(desired, service_id=service.id)
    stored = {schedule.pk: schedule for schedule in selectors.schedule_list(service=service).order_by("created_at")}
    snapshots = {pk: schedule_snapshot(schedule) for pk, schedule in stored.items()}
    pairs, leftovers = _match(states, snapshots)

    cap = settings.LUFFY_MAX_SCHEDULES_PER_SERVICE
    total = len(states) + (0 if prune else len(leftovers))
    if total > cap:
        raise ConflictError(
            f"Service {service.id!r} would have {total} schedules; one service may have at most {cap} "
            "(LUFFY_MAX_SCHEDULES_PER_SERVICE)."
        )

    changes = []
    # Deletes first: they free the keys and timings the updates and creates may take.
    for pk in leftovers:
        if prune:
            _schedule_delete_rows(actor=actor, schedule=stored[pk])
            changes.append(ScheduleChange(DELETED, pk, snapshots[pk], None))
        else:
            changes.append(ScheduleChange(UNCHANGED, pk, snapshots[pk], snapshots[pk]))
    for state, pk in pairs:
        if pk is None:
            continue
        if state == snapshots[pk]:
            changes.append(ScheduleChange(UNCHANGED, pk, snapshots[pk], state))
        else:
            schedule_update(actor=actor, schedule=stored[pk], **state)
            changes.append(ScheduleChange(UPDATED, pk, snapshots[pk], state))
    for state, pk in pairs:
        if pk is None:
            created = schedule_create(actor=actor, service=service, **state)
            changes.append(ScheduleChange(CREATED, created.pk, None, state))
    return changes


def schedule_set_replace(
    *, actor: Actor, service: Service, desired: list[dict], prune: bool = True, dry_run: bool = False
) -> ScheduleSetResult:
    """Make the service's schedules be ``desired`` (request-shaped dicts), in one transaction.

    Each desired schedule matches a stored one by ``key``, else by task and timing; matched ones
    are updated when they differ, the rest created, and stored ones nothing matched deleted
    (kept, as unchanged, with ``prune=False``). Every change is audited as a single write
    would be, and the per-service cap holds for the resulting set. ``dry_run`` does it all in
    a savepoint and rolls it back, so the answer is exactly what the write would do.
    """
    with transaction.atomic():
        changes = _schedule_set_replace(actor=actor, service=service, desired=desired, prune=prune)
        if dry_run:
            transaction.set_rollback(True)
            # The ids of schedules a dry run created were rolled back with them.
            changes = [ScheduleChange(c.action, None, c.before, c.after) if c.action == CREATED else c for c in changes]
    return ScheduleSetResult(changes=changes, dry_run=dry_run)


# --- Idempotency-Key -----------------------------------------------------------------------


def request_fingerprint(*, method: str, path: str, body) -> str:
    """What makes two requests the same request: method, path (slash or not) and JSON body."""
    canonical = json.dumps([method.upper(), path.rstrip("/"), body], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(record: IdempotencyRecord, fingerprint: str) -> tuple[int, dict, bool]:
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    return record.status, record.response, True


def idempotent_call(
    *, actor: Actor, key: str, fingerprint: str, call: Callable[[], tuple[int, dict]]
) -> tuple[int, dict, bool]:
    """Run ``call`` (a write answering ``(status, body)``) once per caller and key.

    Returns ``(status, body, replayed)``. A retry within ``IDEMPOTENCY_TTL`` gets the first
    answer and writes nothing; the same key with another request raises
    ``IdempotencyKeyReused``. Only answers are kept: an error raised by ``call`` rolls back
    its record with its write, so a retry tries again.
    """
    since = django_timezone.now() - IDEMPOTENCY_TTL
    previous = selectors.idempotency_record_get(actor=actor.label, key=key, since=since)
    if previous is not None:
        return _replay(previous, fingerprint)
    record = None
    try:
        with transaction.atomic():
            IdempotencyRecord.objects.filter(created_at__lt=since).delete()
            try:
                with transaction.atomic():
                    # Claimed before the write: a concurrent retry with this key blocks on the
                    # unique index until we commit, then fails here and replays our answer.
                    record = IdempotencyRecord.objects.create(
                        actor=actor.label, key=key, fingerprint=fingerprint, status=0, response={}
                    )
            except IntegrityError:
                record = None
            if record is not None:
                status, body = call()
                record.status, record.response = status, body
                record.save(update_fields=["status", "response"])
    except BrokerUnavailable:
        # Run-now's send failed after the commit: nothing was sent, so a retry must send.
        if record is not None:
            IdempotencyRecord.objects.filter(pk=record.pk).delete()
        raise
    if record is None:
        return _replay(selectors.idempotency_record_get(actor=actor.label, key=key, since=since), fingerprint)
    return status, body, False


# --- beat heartbeat -----------------------------------------------------------------------


@transaction.atomic
def beat_heartbeat_record(*, worker: str, received_at: datetime) -> BeatHeartbeat:
    """Note that ``worker`` ran beat's heartbeat at ``received_at`` (one row, overwritten)."""
    heartbeat, _ = BeatHeartbeat.objects.update_or_create(pk=1, defaults={"worker": worker, "received_at": received_at})
    return heartbeat


# --- runs ---------------------------------------------------------------------------------
# The run record (``Dispatch``) past its send: the publish signal under ``-S django`` and run-now
# record sends here, the event monitor applies what workers report (rules in ``runs.py``).

_RUNS = Dispatch._meta.db_table
_PATCH_COLUMNS = (
    ("task_id", ""),
    ("state", ""),
    ("rank", "::int"),
    ("received_at", "::timestamptz"),
    ("started_at", "::timestamptz"),
    ("finished_at", "::timestamptz"),
    ("runtime_seconds", "::float8"),
    ("worker", ""),
    ("retries", "::int"),
    ("error_type", ""),
    ("error_message", ""),
)


def _apply_assignments(value) -> str:
    """The SET clause that moves a run forward by a patch; ``value(name)`` is the SQL of the
    patch's field. Each right-hand side reads the row as it was before this update."""
    stored_rank = f"CASE {_RUNS}.state " + " ".join(f"WHEN '{s}' THEN {r}" for s, r in runs.RANK.items()) + " END"
    advances = f"{value('rank')} > {stored_rank}"

    def on_advance(column, new):
        return f"{column} = CASE WHEN {advances} THEN {new} ELSE {_RUNS}.{column} END"

    has_error = f"{value('error_type')} <> ''"
    return ",\n".join(
        [
            on_advance("state", value("state")),
            on_advance("finished_at", f"COALESCE({value('finished_at')}, {_RUNS}.finished_at)"),
            on_advance("runtime_seconds", f"COALESCE({value('runtime_seconds')}, {_RUNS}.runtime_seconds)"),
            on_advance("error_type", f"CASE WHEN {has_error} THEN {value('error_type')} ELSE {_RUNS}.error_type END"),
            on_advance(
                "error_message", f"CASE WHEN {has_error} THEN {value('error_message')} ELSE {_RUNS}.error_message END"
            ),
            f"received_at = COALESCE({_RUNS}.received_at, {value('received_at')})",
            f"started_at = COALESCE({_RUNS}.started_at, {value('started_at')})",
            f"worker = CASE WHEN {_RUNS}.worker = '' THEN {value('worker')} ELSE {_RUNS}.worker END",
            f"retries = CASE WHEN {_RUNS}.retries < {value('retries')} "
            f"THEN {value('retries')} ELSE {_RUNS}.retries END",
        ]
    )


# One statement per patch (any database), or on PostgreSQL one statement per 1,000 patches, which
# is what lets the monitor keep up with thousands of events a second (bench/monitor_bench.py).
_APPLY_ONE = f"UPDATE {_RUNS} SET {_apply_assignments(lambda name: f'%({name})s')} WHERE task_id = %(task_id)s"
_APPLY_MANY = (
    f"UPDATE {_RUNS} SET {_apply_assignments(lambda name: f'v.{name}')} "
    f"FROM (VALUES %s) AS v ({', '.join(name for name, _ in _PATCH_COLUMNS)}) WHERE {_RUNS}.task_id = v.task_id"
)
_APPLY_MANY_ROW = "(" + ", ".join(f"%s{cast}" for _, cast in _PATCH_COLUMNS) + ")"


def run_record_sent(
    *,
    periodic_task_name: str,
    slot: datetime,
    task_id: str,
    sent_at: datetime,
    trigger: str = Dispatch.Trigger.SCHEDULE,
) -> None:
    """Record a send, before it is published so that no event about it can arrive first. A
    slot recorded already (the pair is unique) keeps its first record."""
    Dispatch.objects.bulk_create(
        [Dispatch(periodic_task_name=periodic_task_name, slot=slot, task_id=task_id, sent_at=sent_at, trigger=trigger)],
        ignore_conflicts=True,
    )


@transaction.atomic
def run_events_apply(*, patches: list["runs.RunPatch"]) -> set[str]:
    """Apply merged event patches to their runs in one transaction; a run moves only forward,
    so applying a patch twice, or an older one after a newer, changes nothing. Returns the task
    ids that matched a run: events of tasks that are no run of ours (other tasks, pruned runs,
    or runs a beat has not written yet) match none."""
    rows = [
        {
            "task_id": patch.task_id,
            "state": patch.state,
            "rank": patch.rank,
            "received_at": patch.received_at,
            "started_at": patch.started_at,
            "finished_at": patch.finished_at,
            "runtime_seconds": patch.runtime_seconds,
            "worker": patch.worker,
            "retries": patch.retries,
            "error_type": patch.error_type,
            "error_message": patch.error_message,
        }
        for patch in patches
    ]
    if not rows:
        return set()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            from psycopg2.extras import execute_values

            values = [tuple(row[name] for name, _ in _PATCH_COLUMNS) for row in rows]
            matched = execute_values(
                cursor.cursor,
                f"{_APPLY_MANY} RETURNING {_RUNS}.task_id",
                values,
                template=_APPLY_MANY_ROW,
                page_size=1000,
                fetch=True,
            )
            applied = {task_id for (task_id,) in matched}
        else:
            applied = set()
            for row in rows:
                cursor.execute(_APPLY_ONE, row)
                if cursor.rowcount:
                    applied.add(row["task_id"])
        # task-failed carries no runtime; a run whose start came in an earlier batch gets it here.
        seconds = selectors.seconds_between_sql("finished_at", "started_at")
        ids = [row["task_id"] for row in rows if row["finished_at"] is not None and row["runtime_seconds"] is None]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            cursor.execute(
                f"UPDATE {Dispatch._meta.db_table} SET runtime_seconds = {seconds} "
                "WHERE runtime_seconds IS NULL AND finished_at IS NOT NULL AND started_at IS NOT NULL "
                f"AND task_id IN ({', '.join(['%s'] * len(chunk))})",
                chunk,
            )
    return applied


def runs_mark_lost(*, sent_before: datetime, sent_since: datetime) -> int:
    """Mark ``lost`` the runs sent in [since, before) that no worker has reported receiving.

    ``sent_since`` is when the monitor began listening without a break: a run sent while it
    was not listening may have been received unseen, so it is left ``sent``, not called lost.
    """
    return Dispatch.objects.filter(state=Dispatch.State.SENT, sent_at__lt=sent_before, sent_at__gte=sent_since).update(
        state=Dispatch.State.LOST
    )


def runs_prune(*, sent_before: datetime, chunk: int = 5000) -> int:
    """Delete every run sent before ``sent_before``, ``chunk`` rows a statement (short locks),
    until none is left; returns how many went."""
    deleted = 0
    while True:
        ids = list(Dispatch.objects.filter(sent_at__lt=sent_before).values_list("pk", flat=True)[:chunk])
        if ids:
            Dispatch.objects.filter(pk__in=ids)._raw_delete(Dispatch.objects.db)
        deleted += len(ids)
        if len(ids) < chunk:
            return deleted


def monitor_heartbeat_record(*, seen_at: datetime, lag_seconds: float | None = None) -> None:
    """Note that the run monitor is listening and writing (one row, overwritten)."""
    defaults = {"seen_at": seen_at} if lag_seconds is None else {"seen_at": seen_at, "lag_seconds": lag_seconds}
    MonitorHeartbeat.objects.update_or_create(pk=1, defaults=defaults)


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
