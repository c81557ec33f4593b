"""Upcoming load: how many sends beat makes per minute (or hour) ahead, stacked by task.

Pure slot math over distinct timings (``selectors.enabled_timing_groups`` counts the
schedules): the work grows with the distinct timings and their slots, not with the schedules,
so 100k schedules on a handful of timings cost what a handful of schedules cost.
"""

import math
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from . import cron

RESOLUTIONS = {"minute": 60, "hour": 3600}
BUSIEST_COUNT = 5


@dataclass(frozen=True)
class TimingGroup:
    """``count`` enabled schedules of one task sharing one timing.

    A cron timing is its plain expression and zone; an interval its period and phase (the
    epoch second of its anchor modulo the period: its sends fall on those seconds).
    """

    task_name: str
    cron_expression: str | None
    timezone: str
    interval_seconds: int | None
    phase: int | None
    count: int


@dataclass(frozen=True)
class Bucket:
    at: datetime
    total: int
    by_task: dict[str, int]


@dataclass(frozen=True)
class Second:
    second: int
    total: int
    by_task: dict[str, int]


@dataclass(frozen=True)
class Load:
    start: datetime
    end: datetime
    resolution: str
    tasks: list[str]
    schedules: int
    distinct_timings: int
    buckets: list[Bucket]  # only those with a send, in time order
    busiest: list[Bucket]  # the busiest minutes, busiest first
    busiest_minute_seconds: list[Second]  # the busiest minute, second by second (seconds with a send)


def _slots(group: TimingGroup, start: int, end: int) -> list[int]:
    """The group's send times (epoch seconds) in [start, end)."""
    if group.interval_seconds:
        every = group.interval_seconds
        return list(range(start + (group.phase - start) % every, end, every))
    schedule = cron.parse(group.cron_expression).crontab(group.timezone)
    slots, moment = [], datetime.fromtimestamp(start, UTC) - timedelta(microseconds=1)
    while True:
        moment = cron.next_slot(schedule, moment)
        at = int(moment.timestamp())
        if at >= end:
            return slots
        slots.append(at)


def upcoming_load(groups: list[TimingGroup], *, now: datetime, hours: int, resolution: str) -> Load:
    """Sends from ``now`` on, for ``hours``, per ``resolution`` bucket (aligned to the minute)."""
    start_at = now.astimezone(UTC).replace(second=0, microsecond=0)
    start = int(start_at.timestamp())
    end = start + hours * 3600
    first_send = math.ceil(now.timestamp())  # what already went this minute is not upcoming
    minutes = hours * 60
    tasks = sorted({group.task_name for group in groups})
    per_minute = {task: [0] * minutes for task in tasks}
    slots_of: dict[tuple, list[int]] = {}  # tasks sharing a timing share its slots
    for group in groups:
        key = (group.cron_expression, group.timezone, group.interval_seconds, group.phase)
        if key not in slots_of:
            slots_of[key] = _slots(group, first_send, end)
        counts = per_minute[group.task_name]
        for slot in slots_of[key]:
            counts[(slot - start) // 60] += group.count

    totals = [sum(per_minute[task][index] for task in tasks) for index in range(minutes)]

    def bucket(index: int, width: int) -> Bucket:
        by_task = {task: sum(per_minute[task][index : index + width]) for task in tasks}
        return Bucket(
            at=start_at + timedelta(minutes=index),
            total=sum(by_task.values()),
            by_task={task: count for task, count in by_task.items() if count},
        )

    width = RESOLUTIONS[resolution] // 60
    buckets = [bucket(index, width) for index in range(0, minutes, width) if any(totals[index : index + width])]
    ranked = sorted((index for index in range(minutes) if totals[index]), key=lambda index: (-totals[index], index))
    busiest = [bucket(index, 1) for index in ranked[:BUSIEST_COUNT]]

    seconds: dict[int, Counter] = {}
    if busiest:
        first = start + ranked[0] * 60
        for group in groups:
            key = (group.cron_expression, group.timezone, group.interval_seconds, group.phase)
            for slot in slots_of[key]:
                if first <= slot < first + 60:
                    seconds.setdefault(slot - first, Counter())[group.task_name] += group.count
    return Load(
        start=start_at,
        end=start_at + timedelta(hours=hours),
        resolution=resolution,
        tasks=tasks,
        schedules=sum(group.count for group in groups),
        distinct_timings=len(slots_of),
        buckets=buckets,
        busiest=busiest,
        busiest_minute_seconds=[
            Second(second=second, total=sum(counts.values()), by_task=dict(sorted(counts.items())))
            for second, counts in sorted(seconds.items())
        ],
    )
