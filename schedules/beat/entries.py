"""When an entry runs: interval and crontab timing, and the entry type the table holds.

Semantics match ``selectors.schedule_next_run``: an entry anchors on ``last_run_at``, or
``date_changed`` when that is empty, and runs at the first slot strictly after the anchor.
"""

from datetime import timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from celery.exceptions import ImproperlyConfigured
from celery.schedules import solar
from django_celery_beat.models import IntervalSchedule
from django_celery_beat.tzcrontab import TzAwareCrontab

from .. import cron
from ..beat_rows import CRONTAB_FIELDS, crontab_expression
from .clock import MICROSECOND, SECOND, from_us, to_us

# Slots missed while no beat could send (a failover, an outage) are sent late if they are
# younger than one period or this, whichever is longer; older ones are skipped, as stale.
CATCH_UP = timedelta(seconds=10) // MICROSECOND


class Unschedulable(ValueError):
    """A row this scheduler cannot run; the message says why, for the log."""


class Interval:
    """Every ``micros``; from ``start_time`` when the row has one and has never run (as stock does)."""

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

    def next(self, anchor: int, start: int | None, ran: bool) -> int | None:
        # Stock backdates a never-run row with a start_time by 30 years, so it runs at
        # start_time itself; afterwards a period after each run, never before start_time.
        if start is not None and not ran:
            return start
        due = self.after(anchor)
        return due if start is None else max(due, start)


class Cron:
    """Celery's crontab in the row's zone; the first slot at or after ``start_time``."""

    __slots__ = ("crontab",)

    def __init__(self, fields, zone):
        """``fields``: the five crontab values in ``beat_rows.CRONTAB_FIELDS`` order."""
        expression = crontab_expression(fields)
        try:
            tz = ZoneInfo(str(zone))
        except (ValueError, ZoneInfoNotFoundError) as exc:
            raise Unschedulable(f"unknown time zone {zone!r} ({exc})") from None
        try:
            # The strict parser reads day-of-week 7 as Sunday and spots crons that never fire.
            self.crontab = cron.parse(expression).crontab(tz)
        except cron.CronError as strict:
            # What the API refuses but Celery runs (22-2, fri-mon, monday, */60, long
            # expressions) runs exactly as Celery's crontab reads it, as stock does.
            try:
                self.crontab = TzAwareCrontab(**dict(zip(CRONTAB_FIELDS, map(str, fields), strict=True)), tz=tz)
            except (ValueError, TypeError) as exc:
                raise Unschedulable(f"crontab {expression!r}: {strict} {exc}") from None

    def after(self, anchor: int) -> int:
        return to_us(cron.next_slot(self.crontab, from_us(anchor)))

    def next(self, anchor: int, start: int | None, ran: bool) -> int | None:
        return self.after(anchor if start is None else max(anchor, start - 1))


class Clocked:
    """Once, at ``clocked_time`` (late if that has passed), unless the row ran since."""

    __slots__ = ("at",)

    def __init__(self, clocked_time):
        self.at = to_us(clocked_time)

    def after(self, anchor: int) -> int | None:
        return self.at if anchor < self.at else None

    def next(self, anchor: int, start: int | None, ran: bool) -> int | None:
        if ran and anchor >= self.at:
            return None
        return self.at if start is None else max(self.at, start)


class Solar:
    """Celery's solar schedule: the next sun event after the anchor."""

    __slots__ = ("schedule", "_anchor")

    def __init__(self, event, latitude, longitude):
        try:
            self.schedule = solar(event, float(latitude), float(longitude), nowfun=lambda: self._anchor)
        except (ValueError, TypeError, ImproperlyConfigured) as exc:
            raise Unschedulable(f"solar {event} at {latitude}, {longitude}: {exc}") from None

    def after(self, anchor: int) -> int:
        # remaining_estimate is "the next event after last_run_at, minus now": with now set to
        # the anchor, it is how far the next event lies from it.
        moment = from_us(anchor)
        self._anchor = moment
        slot = to_us(moment + self.schedule.remaining_estimate(moment))
        return slot if slot > anchor else self.after(anchor + SECOND)

    def next(self, anchor: int, start: int | None, ran: bool) -> int | None:
        return self.after(anchor if start is None else max(anchor, start - 1))


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
        "ran",
        "retired",
    )

    def period(self) -> int:
        """From the due slot to the one after it (a one-time run: the catch-up window)."""
        following = self.timing.after(self.due)
        return CATCH_UP if following is None else following - self.due

    def next_due(self) -> int | None:
        """First slot the row allows after the anchor; None when it will not run again.

        Past ``expires`` the due time is ``expires`` itself, marked ``retired``: the row is
        disabled then instead of sent, as stock disables an expired row.
        """
        due = self.timing.next(self.anchor, self.start, self.ran)
        if due is not None and self.stop is not None and due >= self.stop:
            self.retired = True
            return self.stop
        return due
