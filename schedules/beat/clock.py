"""The scheduler's one time unit: integer microseconds since the epoch.

Heap keys, slots, anchors and deadlines are all in it, so comparing and adding never mixes
units. Conversions happen at the edges only: the clock (float seconds, as ``time.time``),
the database (datetimes) and celery beat's sleep (float seconds).
"""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
SECOND = 1_000_000

Clock = Callable[[], int]


def to_us(moment: datetime) -> int:
    return (moment - EPOCH) // MICROSECOND


def from_us(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def us(seconds: float) -> int:
    """Seconds (a setting, a clock reading) in the scheduler's unit."""
    return round(seconds * SECOND)


def seconds(micros: int) -> float:
    return micros / SECOND


def microsecond_clock(seconds_clock: Callable[[], float]) -> Clock:
    """A clock in float seconds since the epoch (``time.time``) read in the scheduler's unit."""
    return lambda: us(seconds_clock())
