"""The checks every schedule write makes before it writes: task, timing, key, cap, duplicates."""

from django.conf import settings
from django.core.exceptions import ValidationError

from .. import beat_rows, catalogue, messages, timing
from ..errors import ConflictError
from ..models import Service, TaskSchedule, schedule_key_validator

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


def lock_service(service_id: str) -> Service:
    """Serialise writes to one service's schedules (duplicate check, concurrent updates)."""
    return Service.objects.select_for_update().get(pk=service_id)


def require_task(task_name) -> catalogue.CatalogueTask:
    task = catalogue.get_task(task_name) if isinstance(task_name, str) else None
    if task is None:
        raise ValidationError({"task_name": [messages.unknown_task(task_name)]})
    return task


def require_bool(value, field: str) -> bool:
    if type(value) is not bool:
        raise ValidationError({field: [messages.not_a_boolean(field)]})
    return value


def refuse_over_cap(service: Service) -> None:
    cap = settings.LUFFY_MAX_SCHEDULES_PER_SERVICE
    if TaskSchedule.objects.filter(service=service).count() >= cap:
        raise ConflictError(
            f"Service {service.id!r} has {cap} schedules, the most one service may have "
            "(LUFFY_MAX_SCHEDULES_PER_SERVICE); delete one first."
        )


def require_key_format(key) -> str | None:
    """A key is optional; when given, a string of the key's form."""
    if key is None:
        return None
    if not isinstance(key, str):
        raise ValidationError({"key": [messages.SCHEDULE_KEY]})
    try:
        schedule_key_validator(key)
    except ValidationError as exc:
        raise ValidationError({"key": exc.messages}) from None
    return key


def validate_key(*, service: Service, key, schedule: TaskSchedule | None = None) -> str | None:
    """A key is optional; when given, well formed and not another schedule's in the service."""
    if require_key_format(key) is None:
        return None
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


def refuse_duplicate(*, service: Service, task_name: str, new_timing: timing.Timing, exclude=None):
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
    task = require_task(task_name)
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
    require_bool(enabled, "enabled")
    refuse_duplicate(service=service, task_name=task.name, new_timing=new_timing, exclude=schedule)
    return task, new_timing
