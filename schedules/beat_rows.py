"""The one mapping between a schedule's timing and django-celery-beat's rows.

A cron timing lives in a ``CrontabSchedule`` (five fields plus a time zone), an interval in an
``IntervalSchedule`` (``every`` seconds). The write path, the selectors, the admin forms and
the scheduler all convert through here, so the field names and their order exist once.
"""

import dataclasses
from collections.abc import Iterable

from django_celery_beat.models import IntervalSchedule, PeriodicTask

from . import timing

# CrontabSchedule's fields in cron's order: minute hour day-of-month month day-of-week.
CRONTAB_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")


def crontab_expression(fields: Iterable) -> str:
    """Five crontab field values (in ``CRONTAB_FIELDS`` order) as one expression."""
    return " ".join(str(value) for value in fields)


def crontab_row_expression(row) -> str:
    """The expression a ``CrontabSchedule`` (or anything with its field names) holds."""
    return crontab_expression(getattr(row, name) for name in CRONTAB_FIELDS)


def crontab_spec(cron_timing: timing.Timing) -> dict[str, str]:
    """The ``CrontabSchedule`` field values that hold a (normalised) cron timing."""
    return {
        **dict(zip(CRONTAB_FIELDS, cron_timing.cron_expression.split(), strict=True)),
        "timezone": cron_timing.timezone,
    }


def interval_spec(interval_timing: timing.Timing) -> dict:
    """The ``IntervalSchedule`` field values that hold an interval timing."""
    return {"every": interval_timing.interval_seconds, "period": IntervalSchedule.SECONDS}


def timing_lookup(new: timing.Timing, *, prefix: str = "") -> dict:
    """ORM lookups that match rows holding ``new`` (``prefix`` names the path to the task)."""
    if new.schedule_type == timing.CRON:
        return {f"{prefix}crontab__{key}": value for key, value in crontab_spec(new).items()}
    return {f"{prefix}interval__{key}": value for key, value in interval_spec(new).items()}


def row_matches(row, spec: dict) -> bool:
    """Does a timing row already hold these field values?"""
    return all(str(getattr(row, key)) == str(value) for key, value in spec.items())


def timing_of(periodic_task: PeriodicTask) -> timing.Timing:
    """The timing as stored in a ``PeriodicTask``'s rows (``crontab`` / ``interval`` loaded)."""
    if periodic_task.crontab_id is not None:
        row = periodic_task.crontab
        return timing.Timing(
            schedule_type=timing.CRON,
            cron_expression=crontab_row_expression(row),
            interval_seconds=None,
            timezone=str(row.timezone),
        )
    return timing.Timing(
        schedule_type=timing.INTERVAL,
        cron_expression=None,
        interval_seconds=periodic_task.interval.every,
        timezone=timing.UTC,
    )


def schedule_timing(schedule) -> timing.Timing:
    """A ``TaskSchedule``'s whole timing: its beat rows plus what only the schedule keeps (the
    expression as written with ``H`` fields, an interval's jitter)."""
    return dataclasses.replace(
        timing_of(schedule.periodic_task),
        written_cron_expression=schedule.cron_expression_written or None,
        jitter_seconds=schedule.jitter_seconds,
    )
