"""Run records (``Dispatch``) past their send: the publish signal under ``-S django`` and run-now
record sends here, the event monitor applies what workers report (rules in ``schedules/runs.py``)."""

from datetime import datetime

from django.db import connection, transaction

from .. import runs, selectors
from ..models import Dispatch

_RUNS = Dispatch._meta.db_table
_PATCH_COLUMNS = (
    ("task_id", ""),
    ("state", ""),
    ("rank", "::int"),
    ("received_at", "::timestamptz"),
    ("started_at", "::timestamptz"),
    ("finished_at", "::timestamptz"),
    ("runtime_seconds", "::float8"),
    ("worker", ""),
    ("retries", "::int"),
    ("error_type", ""),
    ("error_message", ""),
)


def _apply_assignments(value) -> str:
    """The SET clause that moves a run forward by a patch; ``value(name)`` is the SQL of the
    patch's field. Each right-hand side reads the row as it was before this update."""
    stored_rank = f"CASE {_RUNS}.state " + " ".join(f"WHEN '{s}' THEN {r}" for s, r in runs.RANK.items()) + " END"
    advances = f"{value('rank')} > {stored_rank}"

    def on_advance(column, new):
        return f"{column} = CASE WHEN {advances} THEN {new} ELSE {_RUNS}.{column} END"

    has_error = f"{value('error_type')} <> ''"
    return ",\n".join(
        [
            on_advance("state", value("state")),
            on_advance("finished_at", f"COALESCE({value('finished_at')}, {_RUNS}.finished_at)"),
            on_advance("runtime_seconds", f"COALESCE({value('runtime_seconds')}, {_RUNS}.runtime_seconds)"),
            on_advance("error_type", f"CASE WHEN {has_error} THEN {value('error_type')} ELSE {_RUNS}.error_type END"),
            on_advance(
                "error_message", f"CASE WHEN {has_error} THEN {value('error_message')} ELSE {_RUNS}.error_message END"
            ),
            f"received_at = COALESCE({_RUNS}.received_at, {value('received_at')})",
            f"started_at = COALESCE({_RUNS}.started_at, {value('started_at')})",
            f"worker = CASE WHEN {_RUNS}.worker = '' THEN {value('worker')} ELSE {_RUNS}.worker END",
            f"retries = CASE WHEN {_RUNS}.retries < {value('retries')} "
            f"THEN {value('retries')} ELSE {_RUNS}.retries END",
        ]
    )


# One statement per patch (any database), or on PostgreSQL one statement per 1,000 patches, which
# is what lets the monitor keep up with thousands of events a second (bench/monitor_bench.py).
_APPLY_ONE = f"UPDATE {_RUNS} SET {_apply_assignments(lambda name: f'%({name})s')} WHERE task_id = %(task_id)s"
_APPLY_MANY = (
    f"UPDATE {_RUNS} SET {_apply_assignments(lambda name: f'v.{name}')} "
    f"FROM (VALUES %s) AS v ({', '.join(name for name, _ in _PATCH_COLUMNS)}) WHERE {_RUNS}.task_id = v.task_id"
)
_APPLY_MANY_ROW = "(" + ", ".join(f"%s{cast}" for _, cast in _PATCH_COLUMNS) + ")"


def run_record_sent(
    *,
    periodic_task_name: str,
    slot: datetime,
    task_id: str,
    sent_at: datetime,
    trigger: str = Dispatch.Trigger.SCHEDULE,
) -> None:
    """Record a send, before it is published so that no event about it can arrive first. A
    slot recorded already (the pair is unique) keeps its first record."""
    Dispatch.objects.bulk_create(
        [Dispatch(periodic_task_name=periodic_task_name, slot=slot, task_id=task_id, sent_at=sent_at, trigger=trigger)],
        ignore_conflicts=True,
    )


@transaction.atomic
def run_events_apply(*, patches: list["runs.RunPatch"]) -> set[str]:
    """Apply merged event patches to their runs in one transaction; a run moves only forward,
    so applying a patch twice, or an older one after a newer, changes nothing. Returns the task
    ids that matched a run: events of tasks that are no run of ours (other tasks, pruned runs,
    or runs a beat has not written yet) match none."""
    rows = [
        {
            "task_id": patch.task_id,
            "state": patch.state,
            "rank": patch.rank,
            "received_at": patch.received_at,
            "started_at": patch.started_at,
            "finished_at": patch.finished_at,
            "runtime_seconds": patch.runtime_seconds,
            "worker": patch.worker,
            "retries": patch.retries,
            "error_type": patch.error_type,
            "error_message": patch.error_message,
        }
        for patch in patches
    ]
    if not rows:
        return set()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            from psycopg2.extras import execute_values

            values = [tuple(row[name] for name, _ in _PATCH_COLUMNS) for row in rows]
            matched = execute_values(
                cursor.cursor,
                f"{_APPLY_MANY} RETURNING {_RUNS}.task_id",
                values,
                template=_APPLY_MANY_ROW,
                page_size=1000,
                fetch=True,
            )
            applied = {task_id for (task_id,) in matched}
        else:
            applied = set()
            for row in rows:
                cursor.execute(_APPLY_ONE, row)
                if cursor.rowcount:
                    applied.add(row["task_id"])
        # task-failed carries no runtime; a run whose start came in an earlier batch gets it here.
        seconds = selectors.seconds_between_sql("finished_at", "started_at")
        ids = [row["task_id"] for row in rows if row["finished_at"] is not None and row["runtime_seconds"] is None]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            cursor.execute(
                f"UPDATE {Dispatch._meta.db_table} SET runtime_seconds = {seconds} "
                "WHERE runtime_seconds IS NULL AND finished_at IS NOT NULL AND started_at IS NOT NULL "
                f"AND task_id IN ({', '.join(['%s'] * len(chunk))})",
                chunk,
            )
    return applied


def runs_mark_lost(*, sent_before: datetime, sent_since: datetime) -> int:
    """Mark ``lost`` the runs sent in [since, before) that no worker has reported receiving.

    ``sent_since`` is when the monitor began listening without a break: a run sent while it
    was not listening may have been received unseen, so it is left ``sent``, not called lost.
    """
    return Dispatch.objects.filter(state=Dispatch.State.SENT, sent_at__lt=sent_before, sent_at__gte=sent_since).update(
        state=Dispatch.State.LOST
    )


def runs_prune(*, sent_before: datetime, chunk: int = 5000) -> int:
    """Delete every run sent before ``sent_before``, ``chunk`` rows a statement (short locks),
    until none is left; returns how many went."""
    deleted = 0
    while True:
        ids = list(Dispatch.objects.filter(sent_at__lt=sent_before).values_list("pk", flat=True)[:chunk])
        if ids:
            Dispatch.objects.filter(pk__in=ids)._raw_delete(Dispatch.objects.db)
        deleted += len(ids)
        if len(ids) < chunk:
            return deleted
