"""A schedule's django-celery-beat rows: its PeriodicTask and the shared timing row it points at."""

import json
import zlib
from datetime import timedelta

from django.db import connection
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from .. import beat_rows, catalogue, timing

# The first key of the two-key advisory locks taken on timing rows (the second is the timing's hash).
TIMING_LOCK_SPACE = zlib.crc32(b"luffy-admin timing row") - 2**31


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


def sync_periodic_task(
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
