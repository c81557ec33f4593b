"""Helpers for driving ``FleetScheduler.tick()`` in-process on a clock the test moves.

The fixtures that use them (``clock``, ``broker``, ``scheduler``) are in ``conftest.py``.
"""

import base64
import json
from datetime import UTC, datetime, timedelta

from django.db import connection

from schedules import selectors
from schedules.beat.clock import from_us
from schedules.beat.lock import LOCK_KEY

from ..e2e import wait_for

QUEUE = "default"  # the catalogue's queue


class Clock:
    """The time a test sets, to the microsecond (the scheduler's unit), read as ``time.time`` reads it."""

    def __init__(self):
        self.now = datetime.now(UTC)

    def __call__(self) -> float:
        return self.now.timestamp()

    def at(self, moment: datetime):
        self.now = moment

    def advance(self, seconds: float):
        self.now += timedelta(seconds=seconds)


def sent(broker, queue=QUEUE) -> list[dict]:
    """Messages on the queue, oldest first: (entry name, task id, args, expires)."""
    messages = [json.loads(raw) for raw in reversed(broker.lrange(queue, 0, -1))]
    return [
        {
            "name": message["headers"]["periodic_task_name"],
            "task": message["headers"]["task"],
            "task_id": message["headers"]["id"],
            "args": json.loads(base64.b64decode(message["body"]))[0],
            "expires": message["headers"]["expires"],
        }
        for message in messages
    ]


def wait_for_the_lock_to_go():
    """Block until no session holds the leader lock.

    PostgreSQL frees a closed session's locks a moment after the client hangs up; a beat that
    tries in between finds the lock taken and stays a standby.
    """
    if connection.vendor != "postgresql":
        return

    def free():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT NOT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objid::bigint = %s "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))",
                [LOCK_KEY],
            )
            return cursor.fetchone()[0]

    wait_for(free, timeout=10, interval=0.01, what="PostgreSQL to end the leader lock's session")


def run(scheduler, clock, until: datetime, step=0.25):
    """Tick through simulated time up to ``until``."""
    while clock.now <= until:
        scheduler.tick()
        clock.advance(step)


def due_of(instance, schedule) -> datetime | None:
    """When the scheduler will next send a TaskSchedule's row (or a PeriodicTask, by id)."""
    row_id = getattr(schedule, "periodic_task_id", None) or schedule.pk
    entry = instance.entries.get(row_id)
    return from_us(entry.due) if entry else None


def fresh(schedule):
    return selectors.schedule_get(schedule.pk)
