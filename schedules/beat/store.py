"""The database side: reading rows into the table, writing run state and claims back.

- Changes are taken in incrementally (``pickup``: notifications on PostgreSQL, else polling).
  A paced reconciliation walks the whole table once per ``reconcile_every`` to catch what
  bypasses every signal (SQL where the triggers are absent).
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
from collections.abc import Callable
from datetime import timedelta

from django.db import DatabaseError, InterfaceError, connection, transaction
from django.db.models import F, Max, Q
from django_celery_beat.models import PeriodicTask, PeriodicTasks
from django_celery_beat.schedulers import ModelEntry

from ..models import Dispatch
from .clock import MICROSECOND, Clock, from_us, to_us
from .entries import Claim, Entry
from .pickup import Pickup
from .table import Table, read_rows

logger = logging.getLogger(__name__)

# How many flush periods run state may wait while a burst is being sent (``keep_up``).
BUSY_FLUSH_DELAY = 4

# How far back a new leader reads dispatch claims the old leader may not have written back.
CLAIM_LOOKBACK = timedelta(minutes=10) // MICROSECOND
# Pruning deletes this many records per statement, for at most this long per run; a run that
# ran out of time is followed by another this soon.
PRUNE_BATCH = 10_000
PRUNE_BUDGET_SECONDS = 0.5
PRUNE_BEHIND_US = timedelta(seconds=1) // MICROSECOND
# During a full load, the caller's keep-alive (the leader lock's session) runs this often,
# looked at once per this many rows.
LOAD_KEEP_ALIVE_SECONDS = 1.0
LOAD_KEEP_ALIVE_ROWS = 2000


class LoadAborted(Exception):
    """The keep-alive said stop (the leader lock is gone): the load is dropped."""


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
        self.pickup = Pickup(
            table,
            clock=clock,
            db=self._db,
            listener=listener,
            listen_every=listen_every,
            poll_every=poll_every,
            reconcile_from_start=self._reconcile_from_start,
        )
        self._reconcile_every, self._page_size = reconcile_every, reconcile_page
        self._flush_every, self._prune_every, self._retention = flush_every, prune_every, retention
        self._db_down = False
        self._reconcile_cursor = 0
        self._next = {"poll": 0, "reconcile": 0, "flush": 0, "prune": 0}
        self._dirty: dict[int, tuple[int, int, int]] = {}  # id -> (anchor, runs, date_changed)
        # Claims made while the database is down (single-beat mode); the oldest go first.
        self._unsaved_claims: deque[Claim] = deque(maxlen=max_unsaved_claims)

    @property
    def unwritten_runs(self) -> int:
        """How many entries' run state waits for the next flush."""
        return len(self._dirty)

    @property
    def wake_at(self) -> int:
        """When the next poll or reconciliation page is due."""
        return min(self._next["poll"], self._next["reconcile"])

    def keep_up(self, now: int, busy: bool = False):
        """Take in changes, write run state back, prune: each when its time has come.

        ``busy``: slots are due now (a burst). The run state then waits, up to
        ``BUSY_FLUSH_DELAY`` flush periods, for the burst to end (the scheduler flushes after
        its last batch): an UPDATE of thousands of rows in the middle of it delays the rest.
        """
        if now >= self._next["poll"]:
            self._next["poll"] = self.pickup.take_in(now)
        if now >= self._next["reconcile"]:
            self._reconcile_page(now)
        flush_at = self._next["flush"] + (BUSY_FLUSH_DELAY * self._flush_every if busy else 0)
        if self._dirty and now >= flush_at:
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
        self.pickup.stop()

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
            self._reconcile_from_start(0)
        return result

    def _reconcile_from_start(self, now: int):
        self._reconcile_cursor, self._next["reconcile"] = 0, now

    # --- rows into the table ------------------------------------------------------------------

    def load(self, keep_alive: Callable[[], bool] | None = None) -> bool:
        """Fill the table from scratch, continuing after the last claimed slot of each entry.

        ``keep_alive`` runs about once a second while rows stream in; False drops the load.
        """
        started = time.perf_counter()
        table = self._table
        table.clear()
        kept_at = started

        def keep():
            nonlocal kept_at
            if keep_alive is not None and time.perf_counter() - kept_at >= LOAD_KEEP_ALIVE_SECONDS:
                kept_at = time.perf_counter()
                if not keep_alive():
                    raise LoadAborted

        def load():
            self._install_configured_entries()
            # Read before the rows: a change in between shows up as a difference at the next look.
            bookmarks = self.pickup.bookmarks()
            claimed = dict(
                Dispatch.objects.filter(sent_at__gte=from_us(self._now() - CLAIM_LOOKBACK))
                .values_list("periodic_task_name")
                .annotate(last=Max("slot"))
            )
            # Streamed in chunks: the whole table is never held as rows next to the entries.
            for count, row in enumerate(read_rows(PeriodicTask.objects.order_by("id")).iterator(2000)):
                table.apply(row, claimed_slot=_us_or_none(claimed.get(row.name)), push=False)
                if count % LOAD_KEEP_ALIVE_ROWS == LOAD_KEEP_ALIVE_ROWS - 1:
                    keep()
            return bookmarks

        polled_at = self._now()
        self.pickup.listen()
        try:
            loaded = self._db("loading the schedule", load)
        except LoadAborted:
            logger.error("beat: the leader lock's session was lost during the load; load dropped")
            loaded = None
        if loaded is None:
            table.clear()
            return False
        self.pickup.loaded(loaded, polled_at)
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

    def _reconcile_page(self, now: int):
        """Compare one page of rows (by id) with memory; a full pass takes ``reconcile_every``."""
        cursor = self._reconcile_cursor
        page = self._db(
            "reconciling",
            lambda: list(read_rows(PeriodicTask.objects.filter(id__gt=cursor).order_by("id"))[: self._page_size]),
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
            self.pickup.find_deletions()

    # --- run state, claims, records -----------------------------------------------------------

    def record_run(self, entry: Entry):
        """The entry was sent and advanced: the slot sent goes back with the next flush.

        The slot, not the anchor: skipping stale slots may have moved the anchor further on.
        """
        if not self._dirty:  # the first unwritten run starts the flush period
            self._next["flush"] = max(self._next["flush"], self._now() + self._flush_every)
        runs = self._dirty.get(entry.id, (0, 0, 0))[1]
        self._dirty[entry.id] = (entry.sent, runs + 1, entry.date_changed)

    def retire(self, entries: list[Entry]):
        """Disable rows that are done (a one-off that ran, a row past ``expires``), as stock does.

        Stock's ``save()`` clears ``last_run_at`` of a disabled row and resets a one-off's
        count, so enabling the row again arms it again; the change is signalled like a save.
        """
        ids = [entry.id for entry in entries]
        for row_id in ids:
            self._dirty.pop(row_id, None)

        def disable():
            with transaction.atomic():
                PeriodicTask.objects.filter(pk__in=ids, enabled=True).update(
                    enabled=False, total_run_count=0, last_run_at=None, date_changed=from_us(self._now())
                )
                PeriodicTasks.update_changed()

        self._db("disabling finished schedules", disable)

    def flush(self):
        """Write run state back, batched; a row changed since it was read keeps its new anchor.

        An UPDATE, never ``save()``: ``date_changed`` and ``PeriodicTasks.last_update`` stay
        as they are, so no scheduler takes its own write for a change. ``date_changed`` is
        in the condition because the write path clears ``last_run_at`` on a timing change, and
        an older slot written over that would bring the next run forward. ``last_run_at``
        never moves backwards: a leader that lost its lock may flush after the next one did.
        """
        if not self._dirty:
            return
        self._next["flush"] = self._now() + self._flush_every  # the regular flush counts from any
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
                    "SET last_run_at = GREATEST(t.last_run_at, v.last_run_at), "
                    "total_run_count = t.total_run_count + v.runs "
                    "FROM (VALUES %s) AS v (id, last_run_at, runs, date_changed) "
                    "WHERE t.id = v.id AND t.date_changed = v.date_changed",
                    [(row_id, from_us(anchor), runs, from_us(changed)) for row_id, (anchor, runs, changed) in batch],
                    template="(%s, %s::timestamptz, %s, %s::timestamptz)",
                    page_size=1000,
                )
            return True
        with transaction.atomic():
            for row_id, (anchor, runs, changed) in batch:
                row = PeriodicTask.objects.filter(pk=row_id, date_changed=from_us(changed))
                row.update(total_run_count=F("total_run_count") + runs)
                row.filter(Q(last_run_at__isnull=True) | Q(last_run_at__lt=from_us(anchor))).update(
                    last_run_at=from_us(anchor)
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
        """Delete dispatch records past the retention, in batches, until none are left or the
        time budget is spent (then again a second later): deleting one fixed batch a minute
        fell behind any rate over 167 sends/s."""
        cutoff = from_us(self._now() - self._retention)
        started = time.perf_counter()

        def delete_batch() -> int:
            expired = Dispatch.objects.filter(sent_at__lt=cutoff).values("pk")[:PRUNE_BATCH]
            return Dispatch.objects.filter(pk__in=expired).delete()[0]

        while self._db("pruning dispatch records", delete_batch) == PRUNE_BATCH:
            if time.perf_counter() - started > PRUNE_BUDGET_SECONDS:
                self._next["prune"] = self._now() + PRUNE_BEHIND_US
                return
