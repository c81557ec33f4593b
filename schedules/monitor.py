"""The run monitor (``manage.py monitor_runs``): Celery task events -> run records.

It listens on the broker's event exchange as Flower does (``app.events.Receiver``), asks the
workers to send events (the ``enable_events`` broadcast, at start and every minute, for workers
started without ``-E``), and writes what it hears in batches: every ``flush_seconds`` or
``max_batch`` events, one transaction through ``services.run_events_apply``. Events merge per
task id in memory first (``runs.PatchBuffer``), so a batch costs one statement per task, not
per event, and repeats or out-of-order events change nothing.

While it listens it also:

- writes its heartbeat (``/health`` reports ``monitor``; ``/metrics`` its age and lag);
- marks ``lost`` the runs no worker received within ``LUFFY_RUN_LOST_SECONDS``, among those sent
  since it began listening without a break (an event sent while it was not listening is gone:
  Celery events are not kept for absent listeners, so such a run is left ``sent``, not called lost);
- prunes runs older than the retention, in chunks, until none is left.

Outages: a broker that drops is reconnected with a capped backoff; a database that fails keeps
the batch in memory (merged per task, so it grows with the tasks seen, not the events) and
writes it once the database answers again. Events of a run not written yet (a single fleet beat
writes its records after a database outage) are tried again for ``unmatched_seconds``.
"""

import logging
import time
from datetime import UTC, datetime, timedelta

from django.db import DatabaseError, InterfaceError, connection

from . import runs, services

logger = logging.getLogger(__name__)


def _moment(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


class RunMonitor:
    flush_seconds = 0.5
    max_batch = 500
    heartbeat_seconds = 5.0
    lost_check_seconds = 5.0
    enable_events_seconds = 60.0
    prune_seconds = 60.0
    max_backoff_seconds = 30.0
    unmatched_seconds = 30.0
    max_unmatched = 10_000

    def __init__(self, app, *, lost_seconds: float, retention: timedelta, clock=time.time):
        self.app = app
        self.lost_seconds = lost_seconds
        self.retention = retention
        self.clock = clock
        self.buffer = runs.PatchBuffer()
        self.unmatched: dict[str, tuple[runs.RunPatch, float]] = {}
        self.listening_since: float | None = None
        self.should_stop = False
        self._receiver = None
        self._db_retry_at = 0.0
        self._db_failures = 0
        self._next = {"flush": 0.0, "heartbeat": 0.0, "lost": 0.0, "enable": 0.0, "prune": 0.0}

    # --- events -----------------------------------------------------------------------------

    def on_event(self, event: dict) -> None:
        self.buffer.add(event)
        if self.buffer.events >= self.max_batch:
            self.flush()

    def tick(self) -> None:
        """Called between two reads from the broker (at least every ``flush_seconds``)."""
        now = self.clock()
        if now >= self._next["flush"]:
            self._next["flush"] = now + self.flush_seconds
            self.flush()
        if self.listening_since is None or now < self._db_retry_at:
            return
        if now >= self._next["heartbeat"]:
            self._next["heartbeat"] = now + self.heartbeat_seconds
            self._db("writing the heartbeat", lambda: services.monitor_heartbeat_record(seen_at=_moment(now)))
        if now >= self._next["lost"]:
            self._next["lost"] = now + self.lost_check_seconds
            self._mark_lost(now)
        if now >= self._next["prune"]:
            self._next["prune"] = now + self.prune_seconds
            self._db("pruning runs", lambda: services.runs_prune(sent_before=_moment(now) - self.retention))
        if now >= self._next["enable"]:
            self._next["enable"] = now + self.enable_events_seconds
            self.enable_events()

    def _mark_lost(self, now: float) -> None:
        # Written first: a run whose `received` is still in the buffer is not lost.
        self.flush()
        if len(self.buffer):
            return  # the database refused the batch; try again next round
        since = self.listening_since
        self._db(
            "marking lost runs",
            lambda: services.runs_mark_lost(sent_before=_moment(now - self.lost_seconds), sent_since=_moment(since)),
        )

    def flush(self) -> None:
        if not (len(self.buffer) or self.unmatched) or self.clock() < self._db_retry_at:
            return
        now = self.clock()
        events = self.buffer.events
        patches = self.buffer.take()
        fresh = {patch.task_id for patch in patches}
        retried = [patch for task_id, (patch, _) in self.unmatched.items() if task_id not in fresh]
        for patch in patches:
            if patch.task_id in self.unmatched:
                patch = self.unmatched[patch.task_id][0].merge(patch)
            retried.append(patch)
        applied = self._db("writing run events", lambda: services.run_events_apply(patches=retried))
        if applied is None:
            # Keep them for the next try; events that arrived meanwhile merge on top.
            pending, self.buffer = self.buffer, runs.PatchBuffer()
            for patch in patches:
                self.buffer.patches[patch.task_id] = patch
            for patch in pending.patches.values():
                self.buffer.patches[patch.task_id] = self.buffer.patches.get(patch.task_id, patch).merge(patch)
            self.buffer.events = events + pending.events
            return
        self._keep_unmatched([patch for patch in retried if patch.task_id not in applied], now)
        newest = max((patch.event_at for patch in patches if patch.event_at), default=None)
        if newest is not None and self.listening_since is not None:
            lag = max(now - newest.timestamp(), 0.0)
            self._db(
                "writing the heartbeat",
                lambda: services.monitor_heartbeat_record(seen_at=_moment(now), lag_seconds=lag),
            )

    def _keep_unmatched(self, patches: list[runs.RunPatch], now: float) -> None:
        """Patches that matched no run are tried again for ``unmatched_seconds``: the run may not
        be written yet (a single fleet beat keeps its records in memory through a database outage
        and writes them after, maybe after the monitor's batch). Most are other tasks' events,
        so they are kept a short while and at most ``max_unmatched`` of them, newest first."""
        previous, self.unmatched = self.unmatched, {}
        for patch in patches:
            since = previous.get(patch.task_id, (None, now))[1]
            if now - since < self.unmatched_seconds:
                self.unmatched[patch.task_id] = (patch, since)
        if len(self.unmatched) > self.max_unmatched:
            newest = sorted(self.unmatched.items(), key=lambda item: item[1][1])[-self.max_unmatched :]
            self.unmatched = dict(newest)

    def enable_events(self) -> None:
        try:
            self.app.control.enable_events()
        except Exception as exc:  # a broadcast that fails is retried on the next round
            logger.warning("monitor: could not ask workers to send events: %s", exc)

    def _db(self, what: str, write):
        """Run a database write; on failure log once per outage, back off, and return None."""
        try:
            result = write()
        except (DatabaseError, InterfaceError) as exc:
            self._db_failures += 1
            delay = min(2.0 ** min(self._db_failures, 5), self.max_backoff_seconds)
            self._db_retry_at = self.clock() + delay
            if self._db_failures == 1:
                logger.warning("monitor: database unavailable while %s (%s); keeping events in memory", what, exc)
            # A broken connection is dropped, so the next query opens a new one.
            if connection.connection is not None and not connection.is_usable():
                connection.close()
            return None
        if self._db_failures:
            logger.info("monitor: database back after %d failed attempts", self._db_failures)
            self._db_failures = 0
        return result

    # --- the broker loop --------------------------------------------------------------------

    def stop(self, *args) -> None:
        self.should_stop = True
        if self._receiver is not None:
            self._receiver.should_stop = True

    def run(self) -> None:
        """Listen until stopped, reconnecting to the broker with a capped backoff."""
        failures = 0
        while not self.should_stop:
            try:
                with self.app.connection_for_read() as broker:
                    broker.ensure_connection(max_retries=1)
                    failures = 0
                    self._listen(broker)
            except Exception as exc:
                if self.should_stop:
                    break
                failures += 1
                delay = min(2.0 ** min(failures, 5), self.max_backoff_seconds)
                logger.warning("monitor: broker connection lost (%s); retrying in %.0f s", exc, delay)
                self.listening_since = None
                self._wait(delay)
        self.flush()
        logger.info("monitor: stopped")

    def _listen(self, broker) -> None:
        self._receiver = self.app.events.Receiver(broker, handlers={"*": self.on_event})
        # Called by kombu's consume loop between reads, also when nothing arrives.
        self._receiver.on_iteration = self.tick
        self._receiver.should_stop = self.should_stop
        self.listening_since = self.clock()
        self._next["enable"] = 0.0
        logger.info("monitor: listening for task events on %s", broker.as_uri())
        for _ in self._receiver.consume(limit=None, safety_interval=self.flush_seconds):
            pass

    def _wait(self, seconds: float) -> None:
        """Sleep while disconnected, still writing what is buffered."""
        deadline = self.clock() + seconds
        while not self.should_stop and self.clock() < deadline:
            self.flush()
            time.sleep(min(self.flush_seconds, max(deadline - self.clock(), 0)))
