"""The database side: reading rows into the table, writing run state and claims back.

- Changes are taken in incrementally: every ``poll_every`` the rows whose ``date_changed``
  moved, and deletions with one aggregate when ``PeriodicTasks.last_update`` moved without a
  saved row to explain it. A paced reconciliation walks the whole table once per
  ``reconcile_every`` to catch what bypasses both (SQL, bulk updates, edited crontab rows).
- Run state (``last_run_at`` = the slot sent, ``total_run_count``) goes back in batches every
  ``flush_every`` with an UPDATE, never ``save()``: ``date_changed`` stays as it is and no
  change is signalled, so its own writes never trigger a reload.
- In single-beat mode the claims are written here (with the leader lock, on the lock's
  session); during an outage they wait in memory.

A database outage is logged once and never raised: every query goes through ``_db``.
"""

import logging
import time
from collections import deque
from datetime import timedelta

from django.db import DatabaseError, InterfaceError, connection, transaction
from django.db.models import Count, F, Max, Q, Sum
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask, PeriodicTasks
from django_celery_beat.schedulers import ModelEntry

from ..beat_rows import CRONTAB_FIELDS
from ..models import Dispatch
from .clock import MICROSECOND, Clock, from_us, to_us
from .entries import Claim, Entry
from .table import ROW_FIELDS, Table

logger = logging.getLogger(__name__)

# Each poll reads the rows whose date_changed is later than the previous poll minus this: a
# transaction stamps date_changed when it saves and becomes visible only when it commits (and
# the writer's clock may run behind ours). Later than that, the reconciliation catches it.
COMMIT_LAG = timedelta(seconds=10) // MICROSECOND
# How often a lost change-notification session is opened again (polling meanwhile).
LISTEN_RETRY = timedelta(seconds=1) // MICROSECOND
# How far back a new leader reads dispatch claims the old leader may not have written back.
CLAIM_LOOKBACK = timedelta(minutes=10) // MICROSECOND


def _database_errors():
    import psycopg2

    return (DatabaseError, InterfaceError, psycopg2.Error)


def _us_or_none(moment) -> int | None:
    return None if moment is None else to_us(moment)


class Store:
    """What the scheduler reads from and writes to the database, and when it last did."""

    def __init__(
        self,
        table: Table,
        *,
        app,
        clock: Clock,
        single: bool,
        poll_every: int,
        listener=None,
        listen_every: int = 0,
        reconcile_every: int,
        reconcile_page: int,
        flush_every: int,
        prune_every: int,
        retention: int,
        max_unsaved_claims: int,
    ):
        self._table = table
        self._app = app
        self._now = clock
        self._single = single
        self._listener, self._listen_every = listener, listen_every
        self._poll_every, self._reconcile_every, self._page_size = poll_every, reconcile_every, reconcile_page
        self._flush_every, self._prune_every, self._retention = flush_every, prune_every, retention
        self._db_down = False
        self._polled_at = 0  # the change bookmarks, set by each load and poll
        self._last_update: int | None = None
        self._enabled: tuple[int, int] = (0, 0)  # the enabled rows' digest at the last look
        self._timings: dict[tuple[str, int], tuple] = {}  # the timing rows at the last look
        self._reconcile_cursor = 0
        self._next = {"poll": 0, "reconcile": 0, "flush": 0, "prune": 0, "listen": 0}
        self._dirty: dict[int, tuple[int, int, int]] = {}  # id -> (anchor, runs, date_changed)
        # Claims made while the database is down (single-beat mode); the oldest go first.
        self._unsaved_claims: deque[Claim] = deque(maxlen=max_unsaved_claims)

    @property
    def wake_at(self) -> int:
        """When the next poll or reconciliation page is due."""
        return min(self._next["poll"], self._next["reconcile"])

    def keep_up(self, now: int):
        """Take in changes, write run state back, prune: each when its time has come."""
        if now >= self._next["poll"]:
            listening = self._listener is not None and self._take_notifications(now)
            self._next["poll"] = now + (self._listen_every if listening else self._poll_every)
            if not listening:
                self.pick_up_changes()
        if now >= self._next["reconcile"]:
            self._reconcile_page(now)
        if self._dirty and now >= self._next["flush"]:
            self._next["flush"] = now + self._flush_every
            self.flush()
        if now >= self._next["prune"]:
            self._next["prune"] = now + self._prune_every
            self._prune()
        if self._unsaved_claims and not self._db_down:
            self._db("recording dispatches made during the outage", self._save_unsaved_claims)

    def reset(self):
        """After a step-down: the run state not written is the next leader's to rebuild."""
        self._dirty.clear()
        self.close()
        try:
            connection.close()  # most likely dead too; the next load opens a fresh one
        except _database_errors():
            pass

    def close(self):
        if self._listener is not None:
            self._listener.stop()

    def _db(self, what: str, work):
        """Run ``work()`` against the database; on an outage log once and return None."""
        try:
            result = work()
        except _database_errors() as exc:
            if not self._db_down:
                logger.error(
                    "beat: database unreachable while %s (%s)%s",
                    what,
                    exc,
                    "; dispatching from memory" if self._single else "",
                )
            self._db_down = True
            try:
                connection.close()
            except _database_errors():
                pass
            return None
        if self._db_down:
            logger.info("beat: database reachable again; reconciling")
            self._db_down = False
            self._reconcile_cursor = 0
            self._next["reconcile"] = 0
        return result

    # --- rows into the table ------------------------------------------------------------------

    def load(self) -> bool:
        """Fill the table from scratch, continuing after the last claimed slot of each entry."""
        started = time.perf_counter()
        table = self._table
        table.clear()

        def load():
            self._install_configured_entries()
            # Read before the rows: a change in between shows up as a difference at the next look.
            digest, timings = self._enabled_digest(), self._timing_rows()
            claimed = dict(
                Dispatch.objects.filter(sent_at__gte=from_us(self._now() - CLAIM_LOOKBACK))
                .values_list("periodic_task_name")
                .annotate(last=Max("slot"))
            )
            last_update = PeriodicTasks.last_change()
            # Streamed in chunks: the whole table is never held as rows next to the entries.
            for row in PeriodicTask.objects.values_list(*ROW_FIELDS, named=True).order_by("id").iterator(2000):
                table.apply(row, claimed_slot=_us_or_none(claimed.get(row.name)), push=False)
            # No stamp yet (rows written by SQL or bulk_create into a fresh database) is a
            # valid state, not a failed load.
            return _us_or_none(last_update), digest, timings

        polled_at = self._now()
        if self._listener is not None:
            # Before the rows are read: a change committed after this is announced.
            self._listener.start()
        loaded = self._db("loading the schedule", load)
        if loaded is None:
            table.clear()
            return False
        (self._last_update, self._enabled, self._timings), self._polled_at = loaded, polled_at
        table.finish_load()
        self._reconcile_cursor = 0
        self._next["reconcile"] = self._now() + self._reconcile_every
        logger.info(
            "beat: loaded %d schedules (%d enabled, %d unschedulable) in %.2f s",
            *table.counts(),
            time.perf_counter() - started,
        )
        return True

    def _install_configured_entries(self):
        """Put ``beat_schedule`` (beat's heartbeat) into the table, as the stock scheduler does at start."""
        for name, fields in self._app.conf.beat_schedule.items():
            ModelEntry.from_entry(name, app=self._app, **fields)

    def _take_notifications(self, now: int) -> bool:
        """Apply what the triggers announced; False while not listening (the caller polls)."""
        payloads = self._listener.take() if self._listener.listening else None
        if payloads is None:
            if now < self._next["listen"] or not self._listener.start():
                self._next["listen"] = now + LISTEN_RETRY
                return False
            # Whatever committed while nobody listened was announced to no one: one poll
            # (with every stamp check) and a reconciliation pass from the start catch it.
            logger.info("beat: listening for changes again; catching up")
            self.pick_up_changes()
            self._reconcile_cursor, self._next["reconcile"] = 0, now
            return True
        # Everything committed before this read was announced: a later catch-up poll starts here.
        self._polled_at = now
        ids: dict[str, set[int]] = {}
        for payload in payloads:
            kind, _, named = payload.partition(":")
            if named == "*":  # too many rows to name: compare the whole table, starting now
                self._reconcile_cursor, self._next["reconcile"] = 0, now
                self._find_deletions()
            else:
                ids.setdefault("id" if kind == "task" else f"{kind}_id", set()).update(map(int, named.split(",")))
        for column, named in ids.items():
            found = self._reread(column, sorted(named))
            if column == "id" and found is not None:
                for row_id in named - found:
                    self._table.forget(row_id)
        return True

    def pick_up_changes(self):
        """Take in the rows saved since the last look; when the change stamp moved, what it stands for."""
        polled_at = self._now()
        since = from_us(self._polled_at - COMMIT_LAG)

        def poll():
            changed = PeriodicTask.objects.filter(date_changed__gt=since).values_list(*ROW_FIELDS, named=True)
            return list(changed), PeriodicTasks.last_change()

        polled = self._db("polling for changes", poll)
        if polled is None:
            return
        rows, last_update = polled
        self._polled_at = polled_at
        for row in rows:
            self._table.apply(row)
        last_update = _us_or_none(last_update)
        if last_update != self._last_update:
            self._last_update = last_update
            # django-celery-beat stamps PeriodicTasks on every instance save and delete, after
            # its admin's bulk actions (update() + update_changed()) and on every save of a
            # timing row. A saved row above may explain a stamp, but not how many changes it
            # stands for: a delete or an admin action in the same poll hides behind it. So
            # every move is checked, each kind with one cheap query.
            self._find_deletions()
            self._find_flipped_rows()
            self._find_retimed_rows()

    def _find_deletions(self):
        known = self._table.row_ids
        totals = self._db(
            "looking for deleted rows", lambda: PeriodicTask.objects.aggregate(count=Count("id"), total=Sum("id"))
        )
        if totals is None or (totals["count"], totals["total"] or 0) == (len(known), sum(known)):
            return
        ids = self._db("looking for deleted rows", lambda: set(PeriodicTask.objects.values_list("id", flat=True)))
        if ids is not None:
            for row_id in [row_id for row_id in known if row_id not in ids]:
                self._table.forget(row_id)

    def _enabled_digest(self):
        """(count, sum of ids) of the enabled rows: moves when a bulk update flips ``enabled``."""
        enabled = Q(enabled=True)
        totals = PeriodicTask.objects.aggregate(count=Count("id", filter=enabled), total=Sum("id", filter=enabled))
        return totals["count"], totals["total"] or 0

    def _find_flipped_rows(self):
        """After ``queryset.update(enabled=...)`` (the admin's actions) re-read the rows that flipped."""
        digest = self._db("looking for enabled or disabled rows", self._enabled_digest)
        if digest is None or digest == self._enabled:
            return
        flags = self._db(
            "looking for enabled or disabled rows", lambda: PeriodicTask.objects.values_list("id", "enabled")
        )
        if flags is None:
            return
        self._enabled = digest
        entries = self._table.entries
        # Enabled rows without an entry include the unschedulable ones: re-read, they cost a hash.
        self._reread("id", [row_id for row_id, enabled in flags if enabled != (row_id in entries)])

    @staticmethod
    def _timing_rows() -> dict[tuple[str, int], tuple]:
        """Every interval and crontab row's fields: few rows, shared by many tasks."""
        rows = {
            ("interval_id", row[0]): row[1:] for row in IntervalSchedule.objects.values_list("id", "every", "period")
        }
        crontabs = CrontabSchedule.objects.values_list("id", *CRONTAB_FIELDS, "timezone")
        rows.update({("crontab_id", row[0]): (*row[1:-1], str(row[-1])) for row in crontabs})
        return rows

    def _find_retimed_rows(self):
        """After a timing row's save (it stamps the change) re-read the tasks that use it."""
        timings = self._db("looking for changed timing rows", self._timing_rows)
        if timings is None:
            return
        edited = [key for key, fields in timings.items() if self._timings.get(key, fields) != fields]
        self._timings = timings
        for column in ("interval_id", "crontab_id"):
            self._reread(column, [row_id for kind, row_id in edited if kind == column])

    def _reread(self, column: str, ids: list[int]) -> set[int] | None:
        """Apply the current version of the rows whose ``column`` is one of ``ids``; their ids."""
        found = set()
        for start in range(0, len(ids), 1000):
            lookup = {f"{column}__in": ids[start : start + 1000]}
            rows = self._db(
                "reading changed rows",
                lambda lookup=lookup: list(PeriodicTask.objects.filter(**lookup).values_list(*ROW_FIELDS, named=True)),
            )
            if rows is None:
                return None
            for row in rows:
                self._table.apply(row)
                found.add(row.id)
        return found

    def _reconcile_page(self, now: int):
        """Compare one page of rows (by id) with memory; a full pass takes ``reconcile_every``."""
        cursor = self._reconcile_cursor
        page = self._db(
            "reconciling",
            lambda: list(
                PeriodicTask.objects.filter(id__gt=cursor)
                .order_by("id")
                .values_list(*ROW_FIELDS, named=True)[: self._page_size]
            ),
        )
        pages = max(1, -(-len(self._table.row_ids) // self._page_size))
        self._next["reconcile"] = now + self._reconcile_every // pages
        if page is None:
            return
        for row in page:
            self._table.apply(row)
        if len(page) == self._page_size:
            self._reconcile_cursor = page[-1].id
        else:  # end of the table: a full pass is done, deletions included
            self._reconcile_cursor = 0
            self._find_deletions()

    # --- run state, claims, records -----------------------------------------------------------

    def record_run(self, entry: Entry):
        """The entry was sent and advanced: its anchor goes back with the next flush."""
        runs = self._dirty.get(entry.id, (0, 0, 0))[1]
        self._dirty[entry.id] = (entry.anchor, runs + 1, entry.date_changed)

    def flush(self):
        """Write run state back, batched; a row changed since it was read keeps its new anchor.

        An UPDATE, never ``save()``: ``date_changed`` and ``PeriodicTasks.last_update`` stay
        as they are, so no scheduler takes its own write for a change. ``date_changed`` is
        in the condition because the write path clears ``last_run_at`` on a timing change, and
        an older slot written over that would bring the next run forward.
        """
        if not self._dirty:
            return
        batch = list(self._dirty.items())
        if self._db("writing run state", lambda: self._write_run_state(batch)):
            for row_id, state in batch:
                if self._dirty.get(row_id) is state:
                    del self._dirty[row_id]

    @staticmethod
    def _write_run_state(batch) -> bool:
        if connection.vendor == "postgresql":
            from psycopg2.extras import execute_values

            # One statement per 1,000 rows; a queryset update with a CASE per row costs
            # Django milliseconds per row to build, which would cap the dispatch rate.
            with connection.cursor() as cursor:
                execute_values(
                    cursor.cursor,
                    f"UPDATE {PeriodicTask._meta.db_table} AS t "
                    "SET last_run_at = v.last_run_at, total_run_count = t.total_run_count + v.runs "
                    "FROM (VALUES %s) AS v (id, last_run_at, runs, date_changed) "
                    "WHERE t.id = v.id AND t.date_changed = v.date_changed",
                    [(row_id, from_us(anchor), runs, from_us(changed)) for row_id, (anchor, runs, changed) in batch],
                    template="(%s, %s::timestamptz, %s, %s::timestamptz)",
                    page_size=1000,
                )
            return True
        with transaction.atomic():
            for row_id, (anchor, runs, changed) in batch:
                PeriodicTask.objects.filter(pk=row_id, date_changed=from_us(changed)).update(
                    last_run_at=from_us(anchor), total_run_count=F("total_run_count") + runs
                )
        return True

    def claim(self, claims: list[Claim]) -> set[tuple[str, int]]:
        """Single-beat mode: record the claims (in memory during an outage); all are ours."""
        if self._db("recording dispatches", lambda: self._insert_claims(claims)) is None:
            self._unsaved_claims.extend(claims)
        return {(claim.name, claim.slot) for claim in claims}

    def _save_unsaved_claims(self):
        claims = list(self._unsaved_claims)
        self._insert_claims(claims)
        for _ in claims:
            self._unsaved_claims.popleft()

    @staticmethod
    def _insert_claims(claims: list[Claim]):
        return Dispatch.objects.bulk_create(
            [
                Dispatch(periodic_task_name=name, slot=from_us(slot), task_id=task_id, sent_at=from_us(sent_at))
                for name, slot, task_id, sent_at in claims
            ],
            ignore_conflicts=True,
            batch_size=1000,
        )

    def _prune(self):
        """Dispatch records past the retention go, 10,000 at a time; the API shows the last 10."""
        cutoff = from_us(self._now() - self._retention)
        self._db(
            "pruning dispatch records",
            lambda: Dispatch.objects.filter(
                pk__in=Dispatch.objects.filter(sent_at__lt=cutoff).values("pk")[:10000]
            ).delete(),
        )
