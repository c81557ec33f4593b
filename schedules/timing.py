"""A schedule's timing: validation of what callers send, words, and the next run beat will make.

Used by the write path (the authority), the API serializers and the admin form, so every
entry point refuses the same things with the same messages.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError

from . import cron, messages
from .catalogue import CatalogueTask

CRON = "cron"
INTERVAL = "interval"
SCHEDULE_TYPES = (CRON, INTERVAL)
UTC = "UTC"
MAX_TIMEZONE_LENGTH = 64

# The IANA names tzdata ships, the same on every host: not the host's own ``localtime``, and
# not ``Factory``, IANA's placeholder for "zone not set".
_TIMEZONES = frozenset(resources.files("tzdata").joinpath("zones").read_text().split()) - {"Factory"}


@dataclass(frozen=True)
class Timing:
    schedule_type: str
    cron_expression: str | None
    interval_seconds: int | None
    timezone: str

    @property
    def description(self) -> str:
        if self.schedule_type == CRON:
            return cron.describe(self.cron_expression)
        return describe_interval(self.interval_seconds)


def describe_interval(seconds: int) -> str:
    for unit_seconds, unit in ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")):
        if seconds % unit_seconds == 0:
            count = seconds // unit_seconds
            return f"Every {unit}" if count == 1 else f"Every {count} {unit}s"
    raise AssertionError("unreachable: every integer is a whole number of seconds")


def is_timezone(name) -> bool:
    return isinstance(name, str) and len(name) <= MAX_TIMEZONE_LENGTH and name in _TIMEZONES


def validate_timing(
    *,
    task: CatalogueTask,
    schedule_type,
    cron_expression,
    interval_seconds,
    timezone,
) -> Timing:
    """Check a complete timing for ``task``; raise ValidationError({field: [messages]})."""
    errors: dict[str, list[str]] = {}
    if schedule_type not in SCHEDULE_TYPES:
        errors["schedule_type"] = ["schedule_type must be 'cron' or 'interval'."]
        raise ValidationError(errors)

    if not is_timezone(timezone):
        errors["timezone"] = [messages.unknown_timezone(timezone)]

    if schedule_type == CRON:
        if interval_seconds is not None:
            errors["interval_seconds"] = ["Leave interval_seconds empty for a cron schedule."]
        if cron_expression is None or cron_expression == "":
            errors["cron_expression"] = ["cron_expression is required for a cron schedule."]
        else:
            try:
                cron_expression = cron.normalise(cron_expression)
            except cron.CronError as exc:
                errors["cron_expression"] = [str(exc)]
    else:
        if cron_expression is not None and cron_expression != "":
            errors["cron_expression"] = ["Leave cron_expression empty for an interval schedule."]
        if interval_seconds is None:
            errors["interval_seconds"] = ["interval_seconds is required for an interval schedule."]
        elif type(interval_seconds) is not int:
            errors["interval_seconds"] = ["interval_seconds must be a whole number of seconds."]
        elif not task.min_interval_seconds <= interval_seconds <= task.max_interval_seconds:
            errors["interval_seconds"] = [
                f"interval_seconds for {task.name} must be between "
                f"{task.min_interval_seconds} and {task.max_interval_seconds}."
            ]
        if timezone != UTC and "timezone" not in errors:
            errors["timezone"] = [
                "An interval schedule runs every N seconds whatever the time zone; leave timezone as UTC."
            ]
    if errors:
        raise ValidationError(errors)
    return Timing(
        schedule_type=schedule_type,
        cron_expression=cron_expression if schedule_type == CRON else None,
        interval_seconds=interval_seconds if schedule_type == INTERVAL else None,
        timezone=timezone,
    )


def next_run(timing: Timing, *, anchor: datetime) -> datetime:
    """When beat sends next, given its anchor (last run, or the last change if never run).

    django-celery-beat's ModelEntry anchors on ``last_run_at`` or, when that is empty,
    ``date_changed``; Celery's schedules then give the first slot after the anchor.
    """
    if timing.schedule_type == INTERVAL:
        return anchor + timedelta(seconds=timing.interval_seconds)
    return cron.next_run_after(timing.cron_expression, ZoneInfo(timing.timezone), anchor)
