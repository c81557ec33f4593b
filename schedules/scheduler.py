"""FleetScheduler: a Celery beat scheduler for many schedules, several beats and bad rows.

It reads django-celery-beat's own tables, so the admin, the API and the stock
``DatabaseScheduler`` (``celery beat -S django``) stay interchangeable. Where the stock
scheduler reloads every row after any change and compares every entry on every tick, this one:

- keeps a heap of next due times and recomputes one entry when it runs or changes (a dispatch
  costs O(log N));
- picks up changes incrementally: every ``poll_seconds`` it reads the rows whose
  ``date_changed`` moved, and checks for deletions with one aggregate when
  ``PeriodicTasks.last_update`` moved without a saved row to explain it; a paced
  reconciliation walks the whole table once per ``reconcile_seconds`` to catch what bypasses
  both (SQL, bulk updates, edited crontab rows);
- writes run state (``last_run_at`` = the slot sent, ``total_run_count``) back in batches
  every ``flush_seconds`` with an UPDATE, never ``save()``: ``date_changed`` stays as it is and
  no change is signalled, so its own writes never trigger a reload;
- claims each slot in ``schedules.Dispatch`` (unique per entry and slot) before sending it;
  the claim is the recent-dispatch record and what keeps a slot single across a failover;
- on PostgreSQL, dispatches only while it holds an advisory lock on a dedicated connection
  with TCP keepalives, and makes its claims on that connection, so a beat whose lock session
  died cannot send (fails closed). Any number of beats may run; one dispatches. On SQLite, or
  with ``LUFFY_BEAT_SINGLE=true``, there is no lock: run exactly one beat;
- skips and logs (by name) a row it cannot schedule; keeps going through database and broker
  outages: a send the broker refused is retried, in order, until it goes or goes stale.

Semantics match ``selectors.schedule_next_run``: an entry anchors on ``last_run_at``, or
``date_changed`` when that is empty, and runs at the first slot strictly after the anchor.
"""

import gc
import heapq
import itertools
import json
import logging
import time
import uuid
import zlib
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from celery.beat import Scheduler
from django.conf import settings
from django.db import DatabaseError, InterfaceError, connection, transaction
from django.db.models import Count, F, Max, Sum
from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks
from django_celery_beat.schedulers import ModelEntry

from . import cron
from .models import Dispatch

logger = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
SECOND_US = 1_000_000

# Each poll reads the rows whose date_changed is later than the previous poll minus this: a
# transaction stamps date_changed when it saves and becomes visible only when it commits (and
# the writer's clock may run behind ours). Later than that, the reconciliation catches it.
COMMIT_LAG = timedelta(seconds=10)
# How long after a row's date_changed django-celery-beat's change stamp may follow it.
STAMP_SLACK = timedelta(seconds=2)
# How far back a new leader reads dispatch claims the old leader may not have written back.
CLAIM_LOOKBACK = timedelta(minutes=10)
LOCK_KEY = zlib.crc32(b"luffy-admin fleet beat")
# Slots missed while no beat could send (a failover, an outage) are sent late if they are
# younger than one period or this, whichever is longer; older ones are skipped, as stale.
CATCH_UP = timedelta(seconds=10) // MICROSECOND

ROW_FIELDS = (
    "id",
    "name",
    "task",
    "args",
    "kwargs",
    "queue",
    "exchange",
    "routing_key",
    "priority",
    "headers",
    "enabled",
    "one_off",
    "start_time",
    "expires",
    "expire_seconds",
    "date_changed",
    "interval_id",
    "interval__every",
    "interval__period",
    "crontab_id",
    "crontab__minute",
    "crontab__hour",
    "crontab__day_of_month",
    "crontab__month_of_year",
    "crontab__day_of_week",
    "crontab__timezone",
    "solar_id",
    "clocked_id",
    # Run state last: it is left out of the change fingerprint (this scheduler writes it).
    "last_run_at",
    "total_run_count",
)
RUN_STATE_FIELDS = 2
_sequence = itertools.count()


def to_us(moment: datetime) -> int:
    return (moment - EPOCH) // MICROSECOND


def from_us(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


class Unschedulable(ValueError):
    """A row this scheduler cannot run; the message says why, for the log."""


class _Interval:
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


class _Cron:
    __slots__ = ("crontab",)

    def __init__(self, fields, zone):
        try:
            parsed = cron.parse(" ".join(str(field) for field in fields))
        except cron.CronError as exc:
            raise Unschedulable(f"crontab {' '.join(map(str, fields))!r}: {exc}") from None
        self.crontab = parsed.crontab(zone)

    def after(self, anchor: int) -> int:
        return to_us(cron.next_slot(self.crontab, from_us(anchor)))


class _Entry:
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


@dataclass
class _Send:
    """A claimed slot waiting for the broker."""

    entry_id: int
    name: str
    task: str
    args: str
    kwargs: str
    headers: str
    options: dict
    slot: int
    task_id: str
    period: int
    stale_at: int


def task_id_for(name: str, slot: int) -> str:
    """The same entry and slot always give the same Celery task id."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"luffy-beat:{name}@{slot}"))


class _LeaderLock:
    """A PostgreSQL advisory lock held by a dedicated session.

    The lock lives as long as the session: if the server, the network or this process goes, the
    lock is gone and another beat may take it. Claims are written on the same session, so a
    claim that succeeds proves the lock was still held when the slot was claimed.
    """

    def __init__(self, database: dict):
        self.database = database
        self.conn = None

    def _connect(self):
        import psycopg2

        options = self.database.get("OPTIONS", {})
        self.conn = psycopg2.connect(
            dbname=self.database["NAME"],
            user=self.database.get("USER") or None,
            password=self.database.get("PASSWORD") or None,
            host=self.database.get("HOST") or None,
            port=self.database.get("PORT") or None,
            connect_timeout=options.get("connect_timeout", 5),
            application_name="luffy-beat-lock",
            # A dead peer must end the session within seconds, releasing the lock (fail closed).
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=2,
            options="-c statement_timeout=5000",
        )
        self.conn.autocommit = True

    def acquire(self) -> bool:
        try:
            if self.conn is None or self.conn.closed:
                self._connect()
            with self.conn.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
                return bool(cursor.fetchone()[0])
        except Exception as exc:  # psycopg2.Error and socket errors alike: not the leader
            logger.warning("beat: cannot reach PostgreSQL for the leader lock: %s", exc)
            self.release()
            return False

    def alive(self) -> bool:
        try:
            with self.conn.cursor() as cursor:
                cursor.execute("SELECT 1")
            return True
        except Exception:
            self.release()
            return False

    def claim(self, rows: list[tuple[str, datetime, str, datetime]]) -> set[tuple[str, datetime]]:
        """Insert (name, slot, task_id, sent_at); return the (name, slot) pairs now ours."""
        from psycopg2.extras import execute_values

        with self.conn.cursor() as cursor:
            claimed = execute_values(
                cursor,
                f"INSERT INTO {Dispatch._meta.db_table} (periodic_task_name, slot, task_id, sent_at) "
                "VALUES %s ON CONFLICT DO NOTHING RETURNING periodic_task_name, slot",
                rows,
                fetch=True,
            )
        return {(name, slot) for name, slot in claimed}

    def release(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # already dead: closing is all that was left to do
                pass
        self.conn = None


def _database_errors():
    import psycopg2

    return (DatabaseError, InterfaceError, psycopg2.Error)


class FleetScheduler(Scheduler):
    """Celery beat scheduler: ``celery -A luffy_admin beat -S schedules.scheduler:FleetScheduler``."""

    poll_seconds = 0.5
    reconcile_seconds = 60.0
    reconcile_page = 500
    flush_seconds = 2.0
    lock_retry_seconds = 1.0
    broker_retry_seconds = 1.0
    prune_seconds = 60.0
    max_batch = 500
    # Claims buffered while the database is down (single-beat mode); the oldest go first.
    max_unsaved_claims = 100_000

    def __init__(self, *args, **kwargs):
        self._clock = time.time
        self.entries: dict[int, _Entry] = {}
        self._rows: dict[int, int] = {}  # every row seen (even disabled or unschedulable) -> fingerprint
        self._unschedulable: dict[int, int] = {}
        self._heap: list = []
        self._dirty: dict[int, tuple[int, int, int]] = {}  # id -> (anchor, runs, date_changed), in µs
        self._pending: deque[_Send] = deque()
        self._unsaved_claims: deque = deque(maxlen=self.max_unsaved_claims)
        self._timings: dict = {}
        self._shared: dict = {}
        self._loaded = False
        self._announced = False
        self._polled_at: datetime | None = None
        self._last_update = None
        self._reconcile_cursor = 0
        self._next = {"poll": 0.0, "reconcile": 0.0, "flush": 0.0, "lock": 0.0, "prune": 0.0, "broker": 0.0}
        self._db_down = False
        self._broker_down = False
        self._producer = None
        self._connection = None
        super().__init__(*args, **kwargs)
        self.max_interval = min(self.max_interval, 1.0)
        self.single = getattr(settings, "LUFFY_BEAT_SINGLE", False) or connection.vendor != "postgresql"
        # Dispatch records older than this are deleted; the API shows the last 10 per schedule.
        self.retention = timedelta(hours=getattr(settings, "LUFFY_BEAT_DISPATCH_RETENTION_HOURS", 24))
        self._lock = None if self.single else _LeaderLock(connection.settings_dict)
        self.is_leader = self.single

    # --- celery beat's interface --------------------------------------------------------------

    def setup_schedule(self):
        """Nothing at start-up: the first tick loads, so a lazy instance never touches the database."""

    def should_sync(self):
        return False  # run state is flushed from tick() on its own clock

    def sync(self):
        if self.is_leader:
            self._flush()

    def close(self):
        try:
            super().close()
        finally:
            self._release_broker()
            if self._lock is not None:
                self._lock.release()

    @property
    def info(self):
        mode = "single beat, no leader lock" if self.single else "PostgreSQL advisory lock, standbys allowed"
        return f"    . fleet scheduler -> {mode}"

    def tick(self, *args, **kwargs):
        """One pass: keep leadership and state fresh, then send what is due. Returns seconds to sleep."""
        now = self._clock()
        if not self._announced:
            self._announced = True
            self._announce_single()
        if self._pending and now >= self._next["broker"]:
            # Claimed slots are this beat's to send, leader or not: no other beat will.
            self._drain_pending(now)
        if not self.single and now >= self._next["lock"]:
            self._check_leadership(now)
        if not self.is_leader:
            return self.lock_retry_seconds
        if not self._loaded and not self._full_load():
            return self.lock_retry_seconds
        if now >= self._next["poll"]:
            self._next["poll"] = now + self.poll_seconds
            self._poll_changes()
        if now >= self._next["reconcile"]:
            self._reconcile_page(now)
        if self._dirty and now >= self._next["flush"]:
            self._next["flush"] = now + self.flush_seconds
            self._flush()
        if now >= self._next["prune"]:
            self._next["prune"] = now + self.prune_seconds
            self._prune()
        if self._unsaved_claims and not self._db_down:
            self._db("recording dispatches made during the outage", self._save_unsaved_claims)
        if not self.is_leader:
            return self.lock_retry_seconds

        self._dispatch_due(int(now * SECOND_US))

        wake = min(self._next["poll"], self._next["reconcile"], now + self.max_interval)
        if self._pending:
            wake = min(wake, self._next["broker"])
        if self._heap:
            wake = min(wake, self._heap[0][0] / SECOND_US)
        return max(0.0, wake - self._clock())

    # --- leadership ---------------------------------------------------------------------------

    def _announce_single(self):
        if self.single:
            logger.warning(
                "beat: no leader lock (%s): run exactly one beat against this database, "
                "or each of them sends every schedule",
                "SQLite" if connection.vendor == "sqlite" else "LUFFY_BEAT_SINGLE",
            )

    def _check_leadership(self, now: float):
        self._next["lock"] = now + self.lock_retry_seconds
        if self.is_leader:
            if not self._lock.alive():
                self._step_down("the leader lock's database session was lost")
            return
        if self._lock.acquire():
            logger.info("beat: took the leader lock; loading the schedule")
            self.is_leader = True
            self._loaded = False

    def _step_down(self, why: str):
        """Stop sending at once; another beat may hold the lock by now (fail closed)."""
        logger.error("beat: stopped dispatching: %s; waiting to take the lock again", why)
        self.is_leader = False
        self._loaded = False
        self.entries.clear()
        self._rows.clear()
        self._unschedulable.clear()
        self._heap = []
        self._dirty.clear()
        self._lock.release()
        try:
            connection.close()  # most likely dead too; the next load opens a fresh one
        except _database_errors():
            pass

    # --- the database side --------------------------------------------------------------------

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
                    "; dispatching from memory" if self.single else "",
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
            self._next["reconcile"] = 0.0
        return result

    def _full_load(self) -> bool:
        started = time.perf_counter()
        self.entries.clear()
        self._rows.clear()
        self._unschedulable.clear()

        def load():
            self._install_configured_entries()
            claimed = dict(
                Dispatch.objects.filter(sent_at__gte=from_us(int(self._clock() * SECOND_US)) - CLAIM_LOOKBACK)
                .values_list("periodic_task_name")
                .annotate(last=Max("slot"))
            )
            last_update = PeriodicTasks.last_change()
            # Streamed in chunks: the whole table is never held as rows next to the entries.
            for row in PeriodicTask.objects.values_list(*ROW_FIELDS, named=True).order_by("id").iterator(2000):
                self._apply(row, claimed_slot=claimed.get(row.name), push=False)
            return last_update

        polled_at = from_us(int(self._clock() * SECOND_US))
        loaded = self._db("loading the schedule", load)
        if loaded is None:
            self.entries.clear()
            self._rows.clear()
            return False
        self._last_update, self._polled_at = loaded, polled_at
        self._heap = [(entry.due, next(_sequence), entry) for entry in self.entries.values()]
        heapq.heapify(self._heap)
        # The entries live as long as the process: keep the collector from walking them all
        # again and again (at 100k entries each full collection stalled a tick ~150 ms).
        gc.collect()
        gc.freeze()
        self._loaded = True
        self._reconcile_cursor = 0
        self._next["reconcile"] = self._clock() + self.reconcile_seconds
        logger.info(
            "beat: loaded %d schedules (%d enabled, %d unschedulable) in %.2f s",
            len(self._rows),
            len(self.entries),
            len(self._unschedulable),
            time.perf_counter() - started,
        )
        return True

    def _install_configured_entries(self):
        """Put ``beat_schedule`` (beat's heartbeat) into the table, as the stock scheduler does at start."""
        for name, fields in self.app.conf.beat_schedule.items():
            ModelEntry.from_entry(name, app=self.app, **fields)

    def _poll_changes(self):
        """Take in the rows saved since the last look, and deletions when the change stamp says so."""
        polled_at = from_us(int(self._clock() * SECOND_US))
        since = self._polled_at - COMMIT_LAG

        def poll():
            changed = PeriodicTask.objects.filter(date_changed__gt=since).values_list(*ROW_FIELDS, named=True)
            return list(changed), PeriodicTasks.last_change()

        polled = self._db("polling for changes", poll)
        if polled is None:
            return
        rows, last_update = polled
        self._polled_at = polled_at
        changed = [row for row in rows if self._apply(row)]
        stamp_moved = last_update is not None and last_update != self._last_update
        self._last_update = last_update
        # django-celery-beat stamps PeriodicTasks on every instance save and delete. A save
        # shows up above with a date_changed just before the stamp; a stamp nothing explains
        # is a delete, worth one aggregate over the table (a delete next to a save within one
        # poll is left to the reconciliation).
        if stamp_moved and not any(timedelta(0) <= last_update - row.date_changed < STAMP_SLACK for row in changed):
            self._find_deletions()

    def _find_deletions(self):
        totals = self._db(
            "looking for deleted rows", lambda: PeriodicTask.objects.aggregate(count=Count("id"), total=Sum("id"))
        )
        if totals is None or (totals["count"], totals["total"] or 0) == (len(self._rows), sum(self._rows)):
            return
        ids = self._db("looking for deleted rows", lambda: set(PeriodicTask.objects.values_list("id", flat=True)))
        if ids is not None:
            for row_id in [row_id for row_id in self._rows if row_id not in ids]:
                self._forget(row_id)

    def _reconcile_page(self, now: float):
        """Compare one page of rows (by id) with memory; a full pass takes ``reconcile_seconds``."""
        cursor = self._reconcile_cursor
        page = self._db(
            "reconciling",
            lambda: list(
                PeriodicTask.objects.filter(id__gt=cursor)
                .order_by("id")
                .values_list(*ROW_FIELDS, named=True)[: self.reconcile_page]
            ),
        )
        pages = max(1, -(-len(self._rows) // self.reconcile_page))
        self._next["reconcile"] = now + self.reconcile_seconds / pages
        if page is None:
            return
        for row in page:
            self._apply(row)
        if len(page) == self.reconcile_page:
            self._reconcile_cursor = page[-1].id
        else:  # end of the table: a full pass is done, deletions included
            self._reconcile_cursor = 0
            self._find_deletions()

    def _flush(self):
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

    def _prune(self):
        cutoff = from_us(int(self._clock() * SECOND_US)) - self.retention
        self._db(
            "pruning dispatch records",
            lambda: Dispatch.objects.filter(
                pk__in=Dispatch.objects.filter(sent_at__lt=cutoff).values("pk")[:10000]
            ).delete(),
        )

    def _save_unsaved_claims(self):
        if not self._unsaved_claims:
            return
        claims = list(self._unsaved_claims)
        Dispatch.objects.bulk_create(
            [Dispatch(periodic_task_name=n, slot=s, task_id=t, sent_at=at) for n, s, t, at in claims],
            ignore_conflicts=True,
            batch_size=1000,
        )
        for _ in claims:
            self._unsaved_claims.popleft()

    # --- rows to entries ----------------------------------------------------------------------

    def _timing(self, row):
        if row.interval_id is not None and row.crontab_id is None:
            key = ("interval", row.interval__every, row.interval__period)
            if key not in self._timings:
                self._timings[key] = _Interval(row.interval__every, row.interval__period)
            return self._timings[key]
        if row.crontab_id is not None and row.interval_id is None:
            fields = (
                row.crontab__minute,
                row.crontab__hour,
                row.crontab__day_of_month,
                row.crontab__month_of_year,
                row.crontab__day_of_week,
            )
            key = ("cron", *fields, str(row.crontab__timezone))
            if key not in self._timings:
                self._timings[key] = _Cron(fields, row.crontab__timezone)
            return self._timings[key]
        raise Unschedulable("only interval and crontab schedules are supported, one per row")

    def _apply(self, row, claimed_slot=None, push=True) -> bool:
        """Bring memory in line with one row; False when it was already so."""
        row_id, name = row.id, row.name
        fingerprint = hash(row[:-RUN_STATE_FIELDS])
        if self._rows.get(row_id) == fingerprint:
            return False
        previous = self.entries.pop(row_id, None)
        self._rows[row_id] = fingerprint
        self._unschedulable.pop(row_id, None)
        if not row.enabled:
            return True
        try:
            entry = self._build(row, previous, claimed_slot)
        except (Unschedulable, OverflowError, ValueError, TypeError) as exc:
            self._unschedulable[row_id] = fingerprint
            logger.error("beat: skipping schedule %r: %s", name, exc)
            return True
        if entry.due is not None:
            self.entries[row_id] = entry
            if push:
                heapq.heappush(self._heap, (entry.due, next(_sequence), entry))
        return True

    def _build(self, row, previous: _Entry | None, claimed_slot: datetime | None) -> _Entry:
        try:
            decoded_args = json.loads(row.args or "[]")
            decoded_kwargs = json.loads(row.kwargs or "{}")
            decoded_headers = json.loads(row.headers or "{}")
        except ValueError as exc:
            raise Unschedulable(f"arguments are not valid JSON ({exc})") from None
        shapes = (isinstance(decoded_args, list), isinstance(decoded_kwargs, dict), isinstance(decoded_headers, dict))
        if not all(shapes):
            raise Unschedulable("args must be a JSON list, kwargs and headers JSON objects")
        routing = tuple(
            (key, getattr(row, key))
            for key in ("queue", "exchange", "routing_key", "priority")
            if getattr(row, key) is not None
        )
        # Thousands of rows share a queue and plain JSON: keep one copy of each, not one per row.
        shared = self._shared

        entry = _Entry()
        entry.id, entry.name = row.id, row.name
        entry.task = shared.setdefault(row.task, row.task)
        entry.args = shared.setdefault(row.args or "[]", row.args or "[]")
        entry.kwargs = shared.setdefault(row.kwargs or "{}", row.kwargs or "{}")
        entry.headers = shared.setdefault(row.headers or "{}", row.headers or "{}")
        entry.options = shared.setdefault(routing, dict(routing))
        entry.timing = self._timing(row)
        entry.date_changed = to_us(row.date_changed)
        entry.start = to_us(row.start_time) if row.start_time else None
        entry.stop = to_us(row.expires) if row.expires else None
        entry.one_off = row.one_off
        entry.expire_us = row.expire_seconds * SECOND_US if row.expire_seconds else None
        # The row's anchor, unless this beat (or, after a takeover, the last leader) has
        # already sent a later slot that is not written back yet.
        entry.sent = max(
            previous.sent if previous is not None else 0, to_us(claimed_slot) if claimed_slot is not None else 0
        )
        entry.anchor = max(to_us(row.last_run_at or row.date_changed), entry.sent)
        entry.due = None if (row.one_off and row.total_run_count) else self._skip_stale(entry, entry.next_due())
        return entry

    def _skip_stale(self, entry: _Entry, due: int | None) -> int | None:
        """Move past slots too old to be worth sending; the youngest missed ones still go."""
        if due is None:
            return None
        now = int(self._clock() * SECOND_US)
        window = max(entry.timing.after(due) - due, CATCH_UP)
        if due >= now - window:
            return due
        logger.warning(
            "beat: %s missed its slots from %s; sending only those after %s",
            entry.name,
            from_us(due),
            from_us(now - window),
        )
        entry.anchor = now - window
        return entry.next_due()

    def _forget(self, row_id: int):
        self.entries.pop(row_id, None)
        self._rows.pop(row_id, None)
        self._unschedulable.pop(row_id, None)

    # --- dispatch -----------------------------------------------------------------------------

    def _dispatch_due(self, now: int):
        """Claim every due slot (up to ``max_batch``), queue the sends, move the entries on."""
        batch = []
        heap = self._heap
        while heap and heap[0][0] <= now and len(batch) < self.max_batch:
            due, _, entry = heapq.heappop(heap)
            if self.entries.get(entry.id) is not entry or entry.due != due:
                continue  # changed or removed since it was pushed
            batch.append(entry)
        if len(heap) > 2 * len(self.entries) + 1000:
            # Changes leave superseded items behind; drop them before they outnumber the live ones.
            self._heap = heap = [
                item for item in heap if self.entries.get(item[2].id) is item[2] and item[2].due == item[0]
            ]
            heapq.heapify(heap)
        if not batch:
            return
        sent_at = from_us(now)
        sends = [self._send_for(entry, now) for entry in batch]
        claims = [(send.name, from_us(send.slot), send.task_id, sent_at) for send in sends]
        claimed = self._claim(claims)
        if claimed is None:
            return  # no longer the leader: the state went with the lock
        for entry, send in zip(batch, sends, strict=False):
            if (send.name, from_us(send.slot)) in claimed:
                self._pending.append(send)
            else:
                logger.warning("beat: %s slot %s was already sent; not sending it again", send.name, from_us(send.slot))
            self._advance(entry, send.slot, now)
        if self._pending and now >= self._next["broker"] * SECOND_US:
            self._drain_pending(now / SECOND_US)

    def _send_for(self, entry: _Entry, now: int) -> _Send:
        slot = entry.due
        period = entry.expire_us if entry.expire_us is not None else entry.timing.after(slot) - slot
        return _Send(
            entry_id=entry.id,
            name=entry.name,
            task=entry.task,
            args=entry.args,
            kwargs=entry.kwargs,
            headers=entry.headers,
            options=entry.options,
            slot=slot,
            task_id=task_id_for(entry.name, slot),
            period=period,
            stale_at=slot + max(period, CATCH_UP),
        )

    def _claim(self, claims) -> set | None:
        if not self.single:
            try:
                return self._lock.claim(claims)
            except Exception as exc:  # the lock session is gone: so is the right to send
                self._step_down(f"claiming slots failed ({exc})")
                return None
        saved = self._db(
            "recording dispatches",
            lambda: Dispatch.objects.bulk_create(
                [Dispatch(periodic_task_name=n, slot=s, task_id=t, sent_at=at) for n, s, t, at in claims],
                ignore_conflicts=True,
            ),
        )
        if saved is None:
            self._unsaved_claims.extend(claims)
        return {(name, slot) for name, slot, _, _ in claims}

    def _advance(self, entry: _Entry, slot: int, now: int):
        entry.anchor = entry.sent = slot
        try:
            due = None if entry.one_off else self._skip_stale(entry, entry.next_due())
        except (OverflowError, ValueError) as exc:
            logger.error("beat: skipping schedule %r from now on: %s", entry.name, exc)
            due = None
        entry.due = due
        self._dirty[entry.id] = (entry.anchor, self._dirty.get(entry.id, (0, 0, None))[1] + 1, entry.date_changed)
        if due is None:
            self.entries.pop(entry.id, None)
        else:
            heapq.heappush(self._heap, (due, next(_sequence), entry))

    def _drain_pending(self, now: float):
        """Publish claimed slots in order; on a broker error keep the rest for the next try."""
        while self._pending:
            send = self._pending[0]
            if send.stale_at < int(now * SECOND_US):
                self._pending.popleft()
                logger.error(
                    "beat: %s slot %s went stale before the broker took it; not sent", send.name, from_us(send.slot)
                )
                continue
            try:
                self._publish(send, now)
            except Exception as exc:  # kombu raises transport-specific errors
                self._release_broker()
                self._next["broker"] = now + self.broker_retry_seconds
                if not self._broker_down:
                    logger.error(
                        "beat: broker refused %s slot %s (%s); keeping %d sends, retrying every %s s",
                        send.name,
                        from_us(send.slot),
                        exc,
                        len(self._pending),
                        self.broker_retry_seconds,
                    )
                self._broker_down = True
                return
            if self._broker_down:
                logger.info("beat: broker reachable again; sending %d waiting slots", len(self._pending))
                self._broker_down = False
            self._pending.popleft()

    def _publish(self, send: _Send, now: float):
        if self._producer is None:
            # No reconnect loop inside a send (kombu's default retries for seconds): a refused
            # send goes back to the queue and the tick goes on; the next try is ours to time.
            self._connection = self.app.connection_for_write(
                transport_options=dict(self.app.conf.broker_transport_options, max_retries=0)
            )
            self._producer = self.app.amqp.Producer(self._connection, auto_declare=False)
        logger.info("beat: sending %s (%s) for %s", send.name, send.task, from_us(send.slot))
        # The headers the stock scheduler sends: the worker side knows the entry by its name.
        headers = dict(json.loads(send.headers), periodic_task_name=send.name, celery_beat_task=True)
        self.app.send_task(
            send.task,
            json.loads(send.args),
            json.loads(send.kwargs),
            task_id=send.task_id,
            producer=self._producer,
            retry=False,
            # Stale once the next slot is due: a lagging worker pool skips it instead of
            # replaying a pile of old runs.
            expires=from_us(max(send.slot, int(now * SECOND_US)) + send.period),
            headers=headers,
            **send.options,
        )

    def _release_broker(self):
        if self._connection is not None:
            try:
                self._connection.release()
            except Exception:  # already broken; dropping it is the point
                pass
        self._connection = self._producer = None
