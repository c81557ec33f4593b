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


# jitter_seconds may be at most the interval divided by this (a tenth of it).
MAX_JITTER_SHARE = 10


@dataclass(frozen=True)
class Timing:
    """``cron_expression`` is the plain crontab beat runs; ``written_cron_expression`` what the
    caller wrote when it has ``H`` fields (None otherwise)."""

    schedule_type: str
    cron_expression: str | None
    interval_seconds: int | None
    timezone: str
    written_cron_expression: str | None = None
    jitter_seconds: int | None = None

    @property
    def shown_cron_expression(self) -> str | None:
        """The expression as its author wrote it (normalised), ``H`` fields included."""
        return self.written_cron_expression or self.cron_expression

    @property
    def description(self) -> str:
        if self.schedule_type == CRON:
            return cron.describe(self.cron_expression)
        words = describe_interval(self.interval_seconds)
        return f"{words}, jitter up to {self.jitter_seconds} s" if self.jitter_seconds else words


def schedule_key(service_id: str, task_name: str) -> str:
    """What ``H`` fields and jitter hash: stable for the schedule's service and task."""
    return f"{service_id}:{task_name}"


def jitter_offset(timing: Timing, key: str) -> int:
    """How many seconds (0 to ``jitter_seconds``) this schedule's interval slots are shifted."""
    if not timing.jitter_seconds:
        return 0
    return cron.stable_hash(key, "jitter") % (timing.jitter_seconds + 1)


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
    key: str | None,
    jitter_seconds=None,
) -> Timing:
    """Check a complete timing for ``task``; raise ValidationError({field: [messages]}).

    ``key`` (``schedule_key``) resolves ``H`` fields; None refuses them.
    """
    errors: dict[str, list[str]] = {}
    if schedule_type not in SCHEDULE_TYPES:
        errors["schedule_type"] = ["schedule_type must be 'cron' or 'interval'."]
        raise ValidationError(errors)

    if not is_timezone(timezone):
        errors["timezone"] = [messages.unknown_timezone(timezone)]

    written = None
    if schedule_type == CRON:
        if interval_seconds is not None:
            errors["interval_seconds"] = ["Leave interval_seconds empty for a cron schedule."]
        if jitter_seconds is not None:
            errors["jitter_seconds"] = ["jitter_seconds applies to interval schedules; use H fields for cron."]
        if cron_expression is None or cron_expression == "":
            errors["cron_expression"] = ["cron_expression is required for a cron schedule."]
        else:
            try:
                resolved, written = cron.resolve(cron_expression, key)
                cron_expression = resolved.text
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
        if jitter_seconds is not None and (type(jitter_seconds) is not int or jitter_seconds < 0):
            errors["jitter_seconds"] = ["jitter_seconds must be a whole number of seconds, 0 or more."]
        elif (
            jitter_seconds and "interval_seconds" not in errors and jitter_seconds * MAX_JITTER_SHARE > interval_seconds
        ):
            errors["jitter_seconds"] = [
                f"jitter_seconds may be at most a tenth of the interval: {interval_seconds // MAX_JITTER_SHARE} "
                f"for {interval_seconds} s."
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
        written_cron_expression=written,
        # 0 and null both mean no jitter; one spelling is stored.
        jitter_seconds=(jitter_seconds or None) if schedule_type == INTERVAL else None,
    )


def next_run(timing: Timing, *, anchor: datetime) -> datetime:
    """When beat sends next, given its anchor (last run, or the last change if never run).

    django-celery-beat's ModelEntry anchors on ``last_run_at`` or, when that is empty,
    ``date_changed``; Celery's schedules then give the first slot after the anchor.
    """
    if timing.schedule_type == INTERVAL:
        return anchor + timedelta(seconds=timing.interval_seconds)
    return cron.next_run_after(timing.cron_expression, ZoneInfo(timing.timezone), anchor)
