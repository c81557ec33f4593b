"""Reads. Lists fetch their beat rows in the same query, so a page costs a constant number of queries."""

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import BigIntegerField, Case, Count, F, Func, OuterRef, Q, QuerySet, Subquery, When
from django.db.models.functions import Coalesce, Mod
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from . import beat_rows, load, timing
from .models import AuditEvent, BeatHeartbeat, Dispatch, IdempotencyRecord, MonitorHeartbeat, Service, TaskSchedule


def schedule_next_run(schedule: TaskSchedule) -> datetime | None:
    """When beat will send it next; None while disabled."""
    periodic_task = schedule.periodic_task
    if not periodic_task.enabled:
        return None
    anchor = periodic_task.last_run_at or periodic_task.date_changed
    return timing.next_run(beat_rows.timing_of(periodic_task), anchor=anchor)


def _schedules() -> QuerySet[TaskSchedule]:
    return with_run_outcomes(
        TaskSchedule.objects.select_related("service", "periodic_task__crontab", "periodic_task__interval")
    )


# When a run reached its current state: the latest of its times that is set.
RUN_STATE_AT = Coalesce("finished_at", "started_at", "received_at", "sent_at")


def with_run_outcomes(schedules: QuerySet[TaskSchedule]) -> QuerySet[TaskSchedule]:
    """Each schedule with its newest run's state and when it got there (``last_run_state``,
    ``last_run_state_at``) and its newest finished run's state (``last_finished_state``), as
    subqueries of the same query: a list costs no extra query per schedule."""
    runs = Dispatch.objects.filter(periodic_task_name=OuterRef("periodic_task__name"))
    newest = runs.order_by("-slot")
    return schedules.annotate(
        last_run_state=Subquery(newest.values("state")[:1]),
        last_run_state_at=Subquery(newest.annotate(at=RUN_STATE_AT).values("at")[:1]),
        last_finished_state=Subquery(
            runs.filter(finished_at__isnull=False).order_by("-finished_at").values("state")[:1]
        ),
    )


def schedule_list(*, service: Service | None = None, task_name: str | None = None, enabled: bool | None = None):
    schedules = _schedules()
    if service is not None:
        schedules = schedules.filter(service=service)
    if task_name is not None:
        schedules = schedules.filter(task_name=task_name)
    if enabled is not None:
        schedules = schedules.filter(periodic_task__enabled=enabled)
    return schedules


def schedule_get(schedule_id) -> TaskSchedule | None:
    try:
        return _schedules().filter(pk=schedule_id).first()
    except ValidationError:
        return None  # not a UUID: no such schedule


def service_list():
    # Meta.ordering does not survive the GROUP BY of the count; pages need a stable order.
    return Service.objects.annotate(schedule_count=Count("schedules")).order_by("id")


def service_get(service_id: str) -> Service | None:
    return Service.objects.filter(pk=service_id).first()


def schedule_history(schedule_id) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(schedule_id=schedule_id).order_by("-at", "-id")


def service_history(service_id: str) -> QuerySet[AuditEvent]:
    """The service's own changes and its schedules', newest first."""
    return AuditEvent.objects.filter(service_id=service_id).order_by("-at", "-id")


def beat_heartbeat_get() -> BeatHeartbeat | None:
    return BeatHeartbeat.objects.filter(pk=1).first()


def monitor_heartbeat_get() -> MonitorHeartbeat | None:
    return MonitorHeartbeat.objects.filter(pk=1).first()


def schedule_runs(schedule: TaskSchedule, *, state: str | None = None) -> QuerySet[Dispatch]:
    """The schedule's runs, newest slot first; only those in ``state`` when given."""
    runs = Dispatch.objects.filter(periodic_task_name=schedule.periodic_task.name).order_by("-slot", "-sent_at")
    return runs if state is None else runs.filter(state=state)


def service_last_outcomes(service: Service) -> dict[str, dict | None]:
    """Per catalogue task the service schedules: its newest run's state and time across the
    task's schedules, and whether one of them is failing; None for a task with no run yet."""
    outcomes: dict[str, dict] = {}
    for schedule in with_run_outcomes(TaskSchedule.objects.filter(service=service)).order_by("task_name"):
        entry = outcomes.setdefault(schedule.task_name, {"state": None, "at": None, "failing": False})
        entry["failing"] |= schedule.last_finished_state == Dispatch.State.FAILED
        if schedule.last_run_state and (entry["at"] is None or schedule.last_run_state_at > entry["at"]):
            entry.update(state=schedule.last_run_state, at=schedule.last_run_state_at)
    return {task_name: entry if entry["state"] else None for task_name, entry in outcomes.items()}


def schedule_recent_dispatches(schedule: TaskSchedule, limit: int = 10) -> QuerySet[Dispatch]:
    """What beat last sent for the schedule (slot, task id, sent at), newest slot first."""
    return Dispatch.objects.filter(periodic_task_name=schedule.periodic_task.name).order_by("-slot")[:limit]


# --- beat rows a service schedule owns ---------------------------------------------------------
# The one definition of ownership: a PeriodicTask is owned when a TaskSchedule points at it; a
# timing row (CrontabSchedule, IntervalSchedule) when an owned PeriodicTask uses it. Owned rows
# change only through services/; django-celery-beat's admin reads these to keep its hands off.

_OWNED = Q(luffy_schedule__isnull=False)


def owned_periodic_tasks(periodic_tasks: QuerySet[PeriodicTask] | None = None) -> QuerySet[PeriodicTask]:
    """The beat entries service schedules own, among ``periodic_tasks`` (default: all of them)."""
    return (PeriodicTask.objects.all() if periodic_tasks is None else periodic_tasks).filter(_OWNED)


def unowned_periodic_tasks(periodic_tasks: QuerySet[PeriodicTask] | None = None) -> QuerySet[PeriodicTask]:
    """The beat entries no service schedule owns, among ``periodic_tasks`` (default: all of them)."""
    return (PeriodicTask.objects.all() if periodic_tasks is None else periodic_tasks).exclude(_OWNED)


def beat_row_is_owned(row: PeriodicTask | CrontabSchedule | IntervalSchedule) -> bool:
    """Whether a service schedule owns this beat entry, or uses this timing row through its entry."""
    if isinstance(row, PeriodicTask):
        return owned_periodic_tasks(PeriodicTask.objects.filter(pk=row.pk)).exists()
    return owned_periodic_tasks(row.periodictask_set.all()).exists()


def idempotency_record_get(*, actor: str, key: str, since: datetime) -> IdempotencyRecord | None:
    """The first answer to the caller's ``key``, if it is younger than ``since``."""
    return IdempotencyRecord.objects.filter(actor=actor, key=key, created_at__gte=since).first()


# --- upcoming load ---------------------------------------------------------------------------


class _EpochSeconds(Func):
    """Whole seconds since 1970 of a timestamp (Django has no portable ``Extract("epoch")``)."""

    output_field = BigIntegerField()
    # FLOOR: a cast alone rounds, and a send at 12:00:07.6 falls in second 7.
    template = "CAST(FLOOR(EXTRACT(EPOCH FROM %(expressions)s)) AS BIGINT)"

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, template="CAST(strftime('%%s', %(expressions)s) AS INTEGER)")


def enabled_timing_groups() -> list[load.TimingGroup]:
    """Enabled schedules counted per task and distinct timing: one grouped query, then the few
    distinct timing rows it names by id.

    A cron timing is its crontab row (five fields and zone); an interval is its period and its
    phase (the anchor beat counts from, modulo the period), so jittered intervals stay apart.
    Grouping by row ids, not by the rows' text, keeps the query cheap at 100k schedules.
    """
    anchor = Coalesce("periodic_task__last_run_at", "periodic_task__date_changed")
    rows = list(
        TaskSchedule.objects.filter(periodic_task__enabled=True)
        .annotate(
            # CASE, so cron rows (most of them) skip the arithmetic.
            phase=Case(
                When(
                    periodic_task__interval__isnull=False,
                    then=Mod(_EpochSeconds(anchor), F("periodic_task__interval__every")),
                ),
                output_field=BigIntegerField(),
            )
        )
        .values("task_name", "periodic_task__crontab_id", "periodic_task__interval_id", "phase")
        .annotate(count=Count("id"))
        .order_by()
    )
    crontabs = CrontabSchedule.objects.in_bulk({row["periodic_task__crontab_id"] for row in rows} - {None})
    intervals = IntervalSchedule.objects.in_bulk({row["periodic_task__interval_id"] for row in rows} - {None})
    groups = []
    for row in rows:
        crontab = crontabs.get(row["periodic_task__crontab_id"])
        interval = intervals.get(row["periodic_task__interval_id"])
        groups.append(
            load.TimingGroup(
                task_name=row["task_name"],
                cron_expression=beat_rows.crontab_row_expression(crontab) if crontab else None,
                timezone=str(crontab.timezone) if crontab else timing.UTC,
                interval_seconds=interval.every if interval else None,
                phase=row["phase"],
                count=row["count"],
            )
        )
    return groups


def upcoming_load(*, hours: int, resolution: str, now: datetime | None = None) -> load.Load:
    """What beat will send in the next ``hours``, per ``resolution`` bucket, stacked by task."""
    return load.upcoming_load(enabled_timing_groups(), now=now or timezone.now(), hours=hours, resolution=resolution)


# --- metrics (schedules/metrics.py) --------------------------------------------------------
# Labels are the catalogue task and its queue, never a service or schedule id: runs are joined to
# their schedule through the beat entry's name; runs of deleted schedules (and beat's heartbeat)
# have none and are left out.

_RUNS_OF_SCHEDULES = f"""
FROM {Dispatch._meta.db_table} d
JOIN {PeriodicTask._meta.db_table} p ON p.name = d.periodic_task_name
JOIN {TaskSchedule._meta.db_table} s ON s.periodic_task_id = p.id
"""


def seconds_between_sql(later: str, earlier: str) -> str:
    """SQL for the seconds from column ``earlier`` to column ``later``, on PostgreSQL or SQLite."""
    if connection.vendor == "postgresql":
        return f"EXTRACT(EPOCH FROM {later} - {earlier})"
    return f"((julianday({later}) - julianday({earlier})) * 86400.0)"


def run_counts() -> list[tuple[str, str, str, int]]:
    """(task, queue, state, runs) over the runs kept."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT s.task_name, p.queue, d.state, COUNT(*) {_RUNS_OF_SCHEDULES} GROUP BY 1, 2, 3")
        return [(task, queue or "", state, count) for task, queue, state, count in cursor.fetchall()]


def run_histogram(measure: str, buckets: tuple[float, ...]) -> dict[str, tuple[list[int], int, float]]:
    """Per task: (cumulative count per bucket, count, sum) of ``measure`` over the runs kept
    that have it; ``measure`` is ``lateness`` (sent minus slot) or ``runtime``."""
    value = seconds_between_sql("d.sent_at", "d.slot") if measure == "lateness" else "d.runtime_seconds"
    columns = ", ".join(f"SUM(CASE WHEN {value} <= {float(bound)} THEN 1 ELSE 0 END)" for bound in buckets)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT s.task_name, {columns}, COUNT(*), SUM({value}) {_RUNS_OF_SCHEDULES} "
            f"WHERE {value} IS NOT NULL GROUP BY 1"
        )
        return {row[0]: (list(row[1 : 1 + len(buckets)]), row[-2], float(row[-1] or 0)) for row in cursor.fetchall()}


def schedule_counts() -> list[tuple[str, bool, int]]:
    """(task, enabled, schedules)."""
    rows = TaskSchedule.objects.values_list("task_name", "periodic_task__enabled").annotate(count=Count("pk"))
    return list(rows.order_by())


def failing_schedule_counts() -> dict[str, int]:
    failing = with_run_outcomes(TaskSchedule.objects.all()).filter(last_finished_state=Dispatch.State.FAILED)
    return dict(failing.values_list("task_name").annotate(count=Count("pk")).order_by())


def beat_leader_held(lock_key: int) -> bool | None:
    """Whether a fleet beat holds its leader lock (an advisory lock); None off PostgreSQL."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        # A one-key advisory lock shows in pg_locks as classid = high 32 bits, objid = low 32 bits.
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND classid = %s AND objid = %s AND objsubid = 1)",
            [lock_key >> 32, lock_key & 0xFFFFFFFF],
        )
        return cursor.fetchone()[0]
