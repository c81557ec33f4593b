"""FleetScheduler: the celery beat loop over the fleet scheduler's parts.

It reads django-celery-beat's own tables, so the admin, the API and the stock
``DatabaseScheduler`` (``celery beat -S django``) stay interchangeable. Where the stock
scheduler reloads every row after any change and compares every entry on every tick, this one
keeps a heap of next due times (``table``), takes changes in one row at a time and writes run
state back in batches (``store``), claims each slot in ``schedules.Dispatch`` before sending it
(the claim is the recent-dispatch record and what keeps a slot single across a failover), and
keeps sends the broker refused, in order, until they go or go stale (``publisher``).

On PostgreSQL it dispatches only while it holds an advisory lock on a dedicated connection
and makes its claims on that connection (``lock``), so a beat whose lock session died cannot
send (fails closed): any number of beats may run, one dispatches. On SQLite, or with
``LUFFY_BEAT_SINGLE=true``, there is no lock: run exactly one beat.

A row it cannot schedule is skipped and logged by name; database and broker outages are
logged, never raised, and the loop keeps going.
"""

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from celery import signals
from celery.beat import Scheduler
from django.conf import settings
from django.db import connection

from .clock import SECOND, from_us, microsecond_clock, seconds, us
from .entries import Claim
from .listen import ChangeListener
from .lock import LeaderLock
from .publisher import Publisher, Send
from .stopping import StopSignals
from .store import Store
from .table import Table

logger = logging.getLogger(__name__)


class FleetScheduler(Scheduler):
    """Celery beat scheduler: ``celery -A luffy_admin beat -S schedules.scheduler:FleetScheduler``.

    ``clock`` (float seconds since the epoch) is ``time.time`` for celery; tests hand in their own.
    """

    poll_seconds = 0.5
    # With change notifications (PostgreSQL), how often a tick looks for them: the pickup delay.
    listen_seconds = 0.05
    reconcile_seconds = 60.0
    reconcile_page = 500
    flush_seconds = 2.0
    lock_retry_seconds = 1.0
    broker_retry_seconds = 1.0
    prune_seconds = 60.0
    max_batch = 500
    # Claims buffered while the database is down (single-beat mode); the oldest go first.
    max_unsaved_claims = 100_000
    # A tick longer than this is logged (a full load is not: it logs its own time).
    slow_tick_seconds = 1.0

    def __init__(self, *args, clock: Callable[[], float] = time.time, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_interval = min(self.max_interval, 1.0)
        self.single = getattr(settings, "LUFFY_BEAT_SINGLE", False) or connection.vendor != "postgresql"
        self._now = microsecond_clock(clock)
        self.table = Table(clock=self._now)
        self.store = Store(
            self.table,
            app=self.app,
            clock=self._now,
            single=self.single,
            poll_every=us(self.poll_seconds),
            listener=ChangeListener(connection) if self._listens() else None,
            listen_every=us(self.listen_seconds),
            reconcile_every=us(self.reconcile_seconds),
            reconcile_page=self.reconcile_page,
            flush_every=us(self.flush_seconds),
            prune_every=us(self.prune_seconds),
            # Dispatch records older than this are deleted; the API shows the last 10 per schedule.
            retention=us(getattr(settings, "LUFFY_BEAT_DISPATCH_RETENTION_HOURS", 24) * 3600),
            max_unsaved_claims=self.max_unsaved_claims,
        )
        self.stop_signals = StopSignals()
        # Each publish holds stop signals until what it sent is off the queue (stopping).
        self.publisher = Publisher(self.app, retry_every=us(self.broker_retry_seconds), guard=self.stop_signals.held)
        self.lock = None if self.single else LeaderLock(connection)
        self.is_leader = self.single
        self._lock_retry, self._max_sleep = us(self.lock_retry_seconds), us(self.max_interval)
        self._lock_check_at = 0
        self._announced = False
        self._liveness_file = getattr(settings, "LUFFY_BEAT_LIVENESS_FILE", None)
        self._liveness_at = 0
        self._loading = False
        self._ticking = False

    @staticmethod
    def _listens() -> bool:
        return connection.vendor == "postgresql" and getattr(settings, "LUFFY_BEAT_LISTEN", True)

    @property
    def entries(self):
        """The runnable entries by row id, read-only (empty while not the leader)."""
        return self.table.entries

    # --- celery beat's interface --------------------------------------------------------------

    def setup_schedule(self):
        """Nothing at start-up: the first tick loads, so a lazy instance never touches the database."""

    def should_sync(self):
        return False  # run state is flushed from tick() on its own clock

    def sync(self):
        # A beat whose lock session died must not write: the next leader's run state is newer.
        if self.is_leader and (self.lock is None or self.lock.alive()):
            self.store.flush()

    def close(self):
        if self._ticking:
            # celery beat's SIGTERM/SIGINT handler, run in the middle of a tick: maybe inside a
            # database wait (the bounded waits are Python callbacks), with a session mid-statement
            # that closing from here would deadlock on. The handler's SystemExit ends the tick,
            # and beat's loop closes again once it is over.
            return
        # A second stop signal waits too (handled inside, it would close again halfway); the
        # last try for waiting sends has its own deadline.
        with self.stop_signals.held():
            try:
                super().close()
            finally:
                self.publisher.hand_over(self._now())
                self.store.close()
                self.publisher.close()
                if self.lock is not None:
                    self.lock.release()

    @property
    def info(self):
        mode = "single beat, no leader lock" if self.single else "PostgreSQL advisory lock, standbys allowed"
        pickup = "PostgreSQL notifications" if self._listens() else "polling every 0.5 s"
        return f"    . fleet scheduler -> {mode}; changes by {pickup} (luffy-admin's; -S django runs the stock one)"

    def tick(self, *args, **kwargs):
        """One pass: keep leadership and state fresh, then send what is due. Returns seconds to sleep."""
        started, self._loading, self._ticking = time.monotonic(), False, True
        try:
            return self._tick()
        finally:
            self._ticking = False
            took = time.monotonic() - started
            if took > self.slow_tick_seconds and not self._loading:
                # Every wait has a bound (database, broker): a long tick says which one ran out.
                logger.warning("beat: a tick took %.2f s", took)

    def _tick(self) -> float:
        now = self._now()
        if not self._announced:
            self._announced = True
            self._announce_single()
        self._prove_alive(now)
        # Claimed slots are this beat's to send, leader or not: no other beat will.
        self.publisher.drain(now)
        if not self.single and now >= self._lock_check_at:
            self._check_leadership(now)
        if not self.is_leader:
            # The next try a second after this one began: a try that waited out an unanswering
            # database is followed at once, so the loop never sleeps on top of that wait.
            return seconds(max(0, min(self._lock_check_at - self._now(), self._lock_retry)))
        if not self.table.loaded:
            self._loading = True
            if not self.store.load(keep_alive=None if self.single else self._keep_lock):
                return self.lock_retry_seconds
            now = self._now()  # a load takes seconds: claims and expiry go by the time after it
        earliest = self.table.earliest
        self.store.keep_up(now, busy=earliest is not None and earliest <= now)
        self._dispatch_due(now)

        wake = min(self.store.wake_at, now + self._max_sleep)
        for due in (self.publisher.wake_at, self.table.earliest):
            if due is not None:
                wake = min(wake, due)
        return seconds(max(0, wake - self._now()))

    def _prove_alive(self, now: int):
        """Touch the liveness file (at most once a second): a tick that returns proves the loop runs."""
        if self._liveness_file is None or now < self._liveness_at:
            return
        self._liveness_at = now + SECOND
        try:
            Path(self._liveness_file).touch()
        except OSError as exc:  # a health check's file must never stop dispatch
            logger.warning("beat: cannot touch the liveness file %s: %s", self._liveness_file, exc)

    # --- leadership ---------------------------------------------------------------------------

    def _announce_single(self):
        if self.single:
            logger.warning(
                "beat: no leader lock (%s): run exactly one beat against this database, "
                "or each of them sends every schedule",
                "SQLite" if connection.vendor == "sqlite" else "LUFFY_BEAT_SINGLE",
            )

    def _check_leadership(self, now: int):
        self._lock_check_at = now + self._lock_retry
        if self.is_leader:
            if not self.lock.alive():
                self._step_down("the leader lock's database session was lost")
            return
        if self.lock.acquire():
            logger.info("beat: took the leader lock; loading the schedule")
            self.is_leader = True

    def _keep_lock(self) -> bool:
        """During a long load: use the lock's session, so the server does not end it as idle."""
        return self.lock.alive()

    def _step_down(self, why: str):
        """Stop sending at once; another beat may hold the lock by now (fail closed)."""
        logger.error("beat: stopped dispatching: %s; waiting to take the lock again", why)
        self.is_leader = False
        self.table.clear()
        self.store.reset()
        self.lock.release()

    # --- dispatch -----------------------------------------------------------------------------

    def _dispatch_due(self, now: int):
        """Claim every due slot (up to ``max_batch``), queue the sends, move the entries on."""
        batch = self.table.pop_due(now, self.max_batch)
        retired = [entry for entry in batch if entry.retired]
        batch = [entry for entry in batch if not entry.retired]
        sends = [Send.of(entry) for entry in batch]
        # A stop signal waits until the claimed sends are the publisher's (stopping).
        with self.stop_signals.held():
            claims = [Claim(send.name, send.slot, send.task_id, now) for send in sends]
            claimed = self._claim(claims) if claims else set()
            if claimed is None:
                return  # no longer the leader: the state went with the lock
            for entry, send in zip(batch, sends, strict=True):
                if (send.name, send.slot) in claimed:
                    self.publisher.add(send)
                else:
                    logger.warning(
                        "beat: %s slot %s was already sent; not sending it again", send.name, from_us(send.slot)
                    )
                self.table.advance(entry)
                self.store.record_run(entry)
        # Written at once, not with the next flush: the API's next_run reads last_run_at, and
        # a one-off saved meanwhile must not come back armed.
        for entry in retired:
            self.table.forget(entry.id)  # read again from the row: retried if the write fails
        retired += [entry for entry in batch if entry.one_off and (entry.name, entry.sent) in claimed]
        if retired:
            self.store.retire(retired)
        if batch:
            self.publisher.drain(now)
            # Run state goes back at once after the last batch of a burst; between batches it
            # waits for the regular flush (the claims are the record that keeps slots single),
            # so a burst of aligned slots does not pay an UPDATE per batch.
            if self.table.earliest is None or self.table.earliest > now:
                self.store.flush()

    def _claim(self, claims: list[Claim]) -> set[tuple[str, int]] | None:
        if self.single:
            return self.store.claim(claims)
        try:
            return self.lock.claim(claims)
        except Exception as exc:  # the lock session is gone: so is the right to send
            self._step_down(f"claiming slots failed ({exc})")
            return None


@signals.beat_init.connect
def prepare_beat_process(sender=None, **kwargs):
    """``celery beat`` with this scheduler: hold its stop signals around each hand-over
    (stopping) and, on PostgreSQL, bound every database wait of the process (db_waits).

    Only beat's own process: not a worker running beat in a thread (``-B`` without processes),
    not a test that builds a scheduler in its own process.
    """
    scheduler = getattr(sender, "scheduler", None)
    if not isinstance(scheduler, FleetScheduler) or threading.current_thread() is not threading.main_thread():
        return
    scheduler.stop_signals.install()
    if connection.vendor == "postgresql":
        from .. import db_waits

        db_waits.install_for_beat()
        logger.info(
            "beat: database waits bounded to %g s of silence (LUFFY_DB_BEAT_WAIT_SECONDS)",
            settings.LUFFY_DB_BEAT_WAIT_SECONDS,
        )
