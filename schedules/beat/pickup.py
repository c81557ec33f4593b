"""How changes reach the table between loads: notifications where PostgreSQL sends them, else polling.

- With the listener (PostgreSQL, migration 0009's triggers) each look applies the rows the
  notifications name; a lost session is reopened and followed by one catch-up poll.
- Polling (SQLite, ``LUFFY_BEAT_LISTEN=false``, triggers absent, or the session down): every
  ``poll_every`` the rows whose ``date_changed`` moved, and whenever django-celery-beat's change
  stamp moved, three cheap checks for what no ``date_changed`` shows: deleted rows (count and
  sum of ids), rows flipped by a bulk ``update(enabled=...)`` (the same over the enabled rows)
  and edited timing rows (those tables are small: read whole, compared with the last look).
- What bypasses every signal (SQL without triggers) is the store's paced reconciliation's.
"""

import logging
from datetime import timedelta

from django.db.models import CharField, Count, Q, Sum
from django.db.models.functions import Cast
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    PeriodicTasks,
    SolarSchedule,
)

from ..beat_rows import CRONTAB_FIELDS
from .clock import MICROSECOND, from_us, to_us
from .table import read_rows

logger = logging.getLogger(__name__)

# Each poll reads the rows whose date_changed is later than the previous poll minus this: a
# transaction stamps date_changed when it saves and becomes visible only when it commits (and
# the writer's clock may run behind ours). Later than that, the reconciliation catches it.
COMMIT_LAG = timedelta(seconds=10) // MICROSECOND
# How often a lost change-notification session is opened again (polling meanwhile).
LISTEN_RETRY = timedelta(seconds=1) // MICROSECOND


def _us_or_none(moment) -> int | None:
    return None if moment is None else to_us(moment)


class Pickup:
    """The change bookmarks and the ways to move them on; every query goes through the store's ``db``."""

    def __init__(self, table, *, clock, db, listener, listen_every: int, poll_every: int, reconcile_from_start):
        self._table, self._now, self._db = table, clock, db
        self._listener, self._listen_every, self._poll_every = listener, listen_every, poll_every
        self._reconcile_from_start = reconcile_from_start
        self._listen_at = 0
        self._polled_at = 0
        self._last_update: int | None = None
        self._enabled: tuple[int, int] = (0, 0)  # the enabled rows' digest at the last look
        self._timings: dict[tuple[str, int], tuple] = {}  # the timing rows at the last look

    def listen(self):
        """Before a load reads the rows: a change committed after this is announced."""
        if self._listener is not None:
            self._listener.start()

    def stop(self):
        if self._listener is not None:
            self._listener.stop()

    def bookmarks(self):
        """Read (inside the load, before the rows) what the next looks compare against.

        No change stamp yet (rows written by SQL or bulk_create into a fresh database) is a
        valid state, not a failed load.
        """
        return _us_or_none(PeriodicTasks.last_change()), self._enabled_digest(), self._timing_rows()

    def loaded(self, bookmarks, polled_at: int):
        (self._last_update, self._enabled, self._timings), self._polled_at = bookmarks, polled_at

    def take_in(self, now: int) -> int:
        """One look for changes; returns when the next is due."""
        if self._listener is not None and self._take_notifications(now):
            return now + self._listen_every
        self.pick_up_changes()
        return now + self._poll_every

    def _take_notifications(self, now: int) -> bool:
        """Apply what the triggers announced; False while not listening (the caller polls)."""
        payloads = self._listener.take() if self._listener.listening else None
        if payloads is None:
            if now < self._listen_at or not self._listener.start():
                self._listen_at = now + LISTEN_RETRY
                return False
            # Whatever committed while nobody listened was announced to no one: one poll
            # (with every stamp check) and a reconciliation pass from the start catch it.
            logger.info("beat: listening for changes again; catching up")
            self.pick_up_changes()
            self._reconcile_from_start(now)
            return True
        # Everything committed before this read was announced: a later catch-up poll starts here.
        self._polled_at = now
        ids: dict[str, set[int]] = {}
        for payload in payloads:
            kind, _, named = payload.partition(":")
            if named == "*":  # too many rows to name: the stamp checks now, a whole pass from now
                self._reconcile_from_start(now)
                self._look_behind_the_stamp()
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
            changed = read_rows(PeriodicTask.objects.filter(date_changed__gt=since))
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
            self._look_behind_the_stamp()

    def _look_behind_the_stamp(self):
        """Deleted rows, rows a bulk update flipped, tasks on an edited timing row: each one query."""
        self.find_deletions()
        self._find_flipped_rows()
        self._find_retimed_rows()

    def find_deletions(self):
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
            "looking for enabled or disabled rows", lambda: list(PeriodicTask.objects.values_list("id", "enabled"))
        )
        if flags is None:
            return
        self._enabled = digest
        entries = self._table.entries
        # Enabled rows without an entry include the unschedulable ones: re-read, they cost a hash.
        self._reread("id", [row_id for row_id, enabled in flags if enabled != (row_id in entries)])

    @staticmethod
    def _timing_rows() -> dict[tuple[str, int], tuple]:
        """Every timing row's fields (interval, crontab, solar, clocked): few rows, shared by many tasks."""
        rows = {
            ("interval_id", row[0]): row[1:] for row in IntervalSchedule.objects.values_list("id", "every", "period")
        }
        # The zone as text: one zoneinfo does not know must cost its row only, not every check.
        crontabs = CrontabSchedule.objects.annotate(zone=Cast("timezone", CharField())).values_list(
            "id", *CRONTAB_FIELDS, "zone"
        )
        rows.update({("crontab_id", row[0]): row[1:] for row in crontabs})
        solars = SolarSchedule.objects.values_list("id", "event", "latitude", "longitude")
        rows.update({("solar_id", row[0]): row[1:] for row in solars})
        rows.update(
            {("clocked_id", row[0]): row[1:] for row in ClockedSchedule.objects.values_list("id", "clocked_time")}
        )
        return rows

    def _find_retimed_rows(self):
        """After a timing row's save (it stamps the change) re-read the tasks that use it."""
        timings = self._db("looking for changed timing rows", self._timing_rows)
        if timings is None:
            return
        edited = [key for key, fields in timings.items() if self._timings.get(key, fields) != fields]
        self._timings = timings
        for column in ("interval_id", "crontab_id", "solar_id", "clocked_id"):
            self._reread(column, [row_id for kind, row_id in edited if kind == column])

    def _reread(self, column: str, ids: list[int]) -> set[int] | None:
        """Apply the current version of the rows whose ``column`` is one of ``ids``; their ids."""
        found = set()
        for start in range(0, len(ids), 1000):
            lookup = {f"{column}__in": ids[start : start + 1000]}
            rows = self._db(
                "reading changed rows",
                lambda lookup=lookup: list(read_rows(PeriodicTask.objects.filter(**lookup))),
            )
            if rows is None:
                return None
            for row in rows:
                self._table.apply(row)
                found.add(row.id)
        return found
