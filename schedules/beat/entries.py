"""When an entry runs: interval and crontab timing, and the entry type the table holds.

Semantics match ``selectors.schedule_next_run``: an entry anchors on ``last_run_at``, or
``date_changed`` when that is empty, and runs at the first slot strictly after the anchor.
"""

from datetime import timedelta
from typing import NamedTuple

from django_celery_beat.models import IntervalSchedule

from .. import cron
from ..beat_rows import crontab_expression
from .clock import MICROSECOND, from_us, to_us

# Slots missed while no beat could send (a failover, an outage) are sent late if they are
# younger than one period or this, whichever is longer; older ones are skipped, as stale.
CATCH_UP = timedelta(seconds=10) // MICROSECOND


class Unschedulable(ValueError):
    """A row this scheduler cannot run; the message says why, for the log."""


class Interval:
    __slots__ = ("micros",)

    def __init__(self, every, period):
        if period not in {choice for choice, _ in IntervalSchedule.PERIOD_CHOICES}:
            raise Unschedulable(f"unknown interval period {period!r}")
        try:
            micros = timedelta(**{period: every}) // MICROSECOND
        except (OverflowError, TypeError, ValueError) as exc:
            raise Unschedulable(f"interval of {every} {period} cannot be computed ({exc})") from None
        if micros <= 0:
            raise Unschedulable(f"interval of {every} {period} is not positive")
        self.micros = micros

    def after(self, anchor: int) -> int:
        slot = anchor + self.micros
        from_us(slot)  # raises OverflowError past year 9999
        return slot


class Cron:
    __slots__ = ("crontab",)

    def __init__(self, fields, zone):
        """``fields``: the five crontab values in ``beat_rows.CRONTAB_FIELDS`` order."""
        expression = crontab_expression(fields)
        try:
            parsed = cron.parse(expression)
        except cron.CronError as exc:
            raise Unschedulable(f"crontab {expression!r}: {exc}") from None
        self.crontab = parsed.crontab(zone)

    def after(self, anchor: int) -> int:
        return to_us(cron.next_slot(self.crontab, from_us(anchor)))


class Claim(NamedTuple):
    """A slot taken for sending, as ``schedules.Dispatch`` records it (times in µs)."""

    name: str
    slot: int
    task_id: str
    sent_at: int


class Entry:
    """One enabled, schedulable row. Slots keep 100k of these small."""

    __slots__ = (
        "id",
        "name",
        "task",
        "args",
        "kwargs",
        "headers",
        "options",
        "timing",
        "date_changed",
        "anchor",
        "sent",
        "due",
        "start",
        "stop",
        "one_off",
        "expire_us",
    )

    def next_due(self) -> int | None:
        """First slot after the anchor that the row allows; None when it will not run again."""
        due = self.timing.after(self.anchor)
        if self.start is not None and due < self.start:
            due = self.timing.after(self.start - 1)
        if self.stop is not None and due >= self.stop:
            return None
        return due
