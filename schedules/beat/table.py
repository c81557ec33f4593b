"""The schedule in memory: one entry per runnable row and a heap of next due times.

A row is turned into an entry once and recomputed only when it changes or runs, so a
dispatch costs O(log N). Every row seen is remembered by a fingerprint of its fields, so a
row read again unchanged costs a hash, and a row that cannot run is logged once per version.
"""

import gc
import heapq
import itertools
import json
import logging
from collections.abc import Mapping
from types import MappingProxyType

from django.db.models import CharField
from django.db.models.functions import Cast

from ..beat_rows import CRONTAB_FIELDS
from .clock import SECOND, Clock, from_us, to_us
from .entries import CATCH_UP, Clocked, Cron, Entry, Interval, Solar, Unschedulable

logger = logging.getLogger(__name__)

# The PeriodicTask columns an entry is built from (``read_rows``).
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
    *(f"crontab__{name}" for name in CRONTAB_FIELDS),
    "crontab_zone",  # the zone's name as stored: see ``rows``
    "solar_id",
    "solar__event",
    "solar__latitude",
    "solar__longitude",
    "clocked_id",
    "clocked__clocked_time",
    # Run state last: it is left out of the change fingerprint (this scheduler writes it).
    "last_run_at",
    "total_run_count",
)
RUN_STATE_FIELDS = 2


def read_rows(queryset):
    """``PeriodicTask`` rows as the table reads them, named tuples of ``ROW_FIELDS``.

    The zone is read as text: a name zoneinfo does not know (SQL, or a tzdata upgrade that
    dropped it) would make the ORM's time zone field raise for the whole query; here it makes
    one row unschedulable.
    """
    return queryset.annotate(crontab_zone=Cast("crontab__timezone", CharField())).values_list(*ROW_FIELDS, named=True)


class Table:
    """Entries by row id, the rows seen, and the heap that orders the entries by due time."""

    def __init__(self, *, clock: Clock):
        # Skipping stale slots asks the time per entry: a full load of 100k rows takes seconds.
        self._now = clock
        self._entries: dict[int, Entry] = {}
        self._rows: dict[int, int] = {}  # every row seen (even disabled or unschedulable) -> fingerprint
        self._unschedulable: set[int] = set()
        self._heap: list[tuple[int, int, Entry]] = []
        self._sequence = itertools.count()  # ties in the heap never compare entries
        self._timings: dict = {}
        self._shared: dict = {}
        self._loaded = False

    @property
    def loaded(self) -> bool:
        """Whether the table holds the database's rows (a load finished since the last clear)."""
        return self._loaded

    @property
    def entries(self) -> Mapping[int, Entry]:
        """The runnable entries by row id, read-only."""
        return MappingProxyType(self._entries)

    @property
    def row_ids(self):
        """Every row id seen, runnable or not (to find deleted rows)."""
        return self._rows.keys()

    @property
    def earliest(self) -> int | None:
        """The heap's first due time (possibly of an entry changed since), None when empty."""
        return self._heap[0][0] if self._heap else None

    def counts(self) -> tuple[int, int, int]:
        """(rows seen, runnable entries, unschedulable rows)."""
        return len(self._rows), len(self._entries), len(self._unschedulable)

    def clear(self):
        """Forget everything; the next load starts from scratch."""
        self._entries.clear()
        self._rows.clear()
        self._unschedulable.clear()
        self._heap = []
        self._loaded = False

    def finish_load(self):
        """Order the entries applied with ``push=False`` into the heap, once."""
        self._heap = [(entry.due, next(self._sequence), entry) for entry in self._entries.values()]
        heapq.heapify(self._heap)
        # The entries live as long as the process: keep the collector from walking them all
        # again and again (at 100k entries each full collection stalled a tick ~150 ms).
        gc.collect()
        gc.freeze()
        self._loaded = True

    def apply(self, row, claimed_slot: int | None = None, push: bool = True) -> bool:
        """Bring memory in line with one row; False when it was already so.

        ``claimed_slot``: the last slot claimed for the row (by this or an earlier leader).
        ``push=False`` leaves the heap to ``finish_load``.
        """
        row_id, name = row.id, row.name
        fingerprint = hash(row[:-RUN_STATE_FIELDS])
        if self._rows.get(row_id) == fingerprint:
            return False
        self._compact()  # before the row's old entry goes, so its timing is still the live one
        previous = self._entries.pop(row_id, None)
        self._rows[row_id] = fingerprint
        self._unschedulable.discard(row_id)
        if not row.enabled:
            return True
        try:
            entry = self._build(row, previous, claimed_slot)
        except (Unschedulable, OverflowError, ValueError, TypeError, RuntimeError) as exc:
            self._unschedulable.add(row_id)
            logger.error("beat: skipping schedule %r: %s", name, exc)
            return True
        if entry.due is not None:
            self._entries[row_id] = entry
            if push:
                heapq.heappush(self._heap, (entry.due, next(self._sequence), entry))
        return True

    def forget(self, row_id: int):
        self._entries.pop(row_id, None)
        self._rows.pop(row_id, None)
        self._unschedulable.discard(row_id)

    def pop_due(self, now: int, limit: int) -> list[Entry]:
        """Take up to ``limit`` entries due at ``now`` off the heap, earliest first."""
        batch = []
        heap = self._heap
        while heap and heap[0][0] <= now and len(batch) < limit:
            due, _, entry = heapq.heappop(heap)
            if self._entries.get(entry.id) is not entry or entry.due != due:
                continue  # changed or removed since it was pushed
            batch.append(entry)
        if len(heap) > 2 * len(self._entries) + 100:
            # Changes leave superseded items behind; drop them before they outnumber the live ones.
            self._heap = [item for item in heap if self._entries.get(item[2].id) is item[2] and item[2].due == item[0]]
            heapq.heapify(self._heap)
        return batch

    def advance(self, entry: Entry):
        """The entry's due slot was sent (or it retired): anchor on it and queue the next one, if any."""
        entry.anchor = entry.sent = entry.due
        entry.ran = True
        try:
            due = None if (entry.one_off or entry.retired) else self._skip_stale(entry, entry.next_due())
        except (OverflowError, ValueError, RuntimeError) as exc:
            logger.error("beat: skipping schedule %r from now on: %s", entry.name, exc)
            due = None
        entry.due = due
        if due is None:
            self._entries.pop(entry.id, None)
        else:
            heapq.heappush(self._heap, (due, next(self._sequence), entry))

    # --- rows to entries ----------------------------------------------------------------------

    def _timing(self, row):
        kinds = [kind for kind in ("interval", "crontab", "solar", "clocked") if getattr(row, f"{kind}_id") is not None]
        if len(kinds) != 1:
            raise Unschedulable("a row needs exactly one of interval, crontab, solar and clocked")
        kind = kinds[0]
        if kind == "interval":
            key = (kind, row.interval__every, row.interval__period)
        elif kind == "crontab":
            key = (kind, *(getattr(row, f"crontab__{name}") for name in CRONTAB_FIELDS), row.crontab_zone)
        elif kind == "solar":
            key = (kind, row.solar__event, row.solar__latitude, row.solar__longitude)
        else:
            key = (kind, row.clocked__clocked_time)
        if key not in self._timings:
            self._timings[key] = Cron(key[1:6], key[6]) if kind == "crontab" else _TIMINGS[kind](*key[1:])
        return self._timings[key]

    def _build(self, row, previous: Entry | None, claimed_slot: int | None) -> Entry:
        try:
            decoded = [json.loads(text or empty) for text, empty in ((row.args, "[]"), (row.kwargs, "{}"))]
            decoded_headers = json.loads(row.headers or "{}")
        except ValueError as exc:
            raise Unschedulable(f"arguments are not valid JSON ({exc})") from None
        # JSON null is sent as no arguments, as stock sends it.
        decoded_args, decoded_kwargs = decoded[0] if decoded[0] is not None else [], decoded[1] or {}
        shapes = (isinstance(decoded_args, list), isinstance(decoded_kwargs, dict), isinstance(decoded_headers, dict))
        if not all(shapes):
            raise Unschedulable("args must be a JSON list, kwargs and headers JSON objects")
        args = row.args if decoded[0] is not None else "[]"
        kwargs = row.kwargs if decoded[1] is not None else "{}"
        routing = tuple(
            (key, getattr(row, key))
            for key in ("queue", "exchange", "routing_key", "priority")
            if getattr(row, key) is not None
        )
        # Thousands of rows share a queue and plain JSON: keep one copy of each, not one per row.
        shared = self._shared

        entry = Entry()
        entry.id, entry.name = row.id, row.name
        entry.task = shared.setdefault(row.task, row.task)
        entry.args = shared.setdefault(args or "[]", args or "[]")
        entry.kwargs = shared.setdefault(kwargs or "{}", kwargs or "{}")
        entry.headers = shared.setdefault(row.headers or "{}", row.headers or "{}")
        entry.options = shared.setdefault(routing, dict(routing))
        entry.timing = self._timing(row)
        entry.date_changed = to_us(row.date_changed)
        entry.start = to_us(row.start_time) if row.start_time else None
        entry.stop = to_us(row.expires) if row.expires else None
        entry.one_off = row.one_off
        entry.expire_us = row.expire_seconds * SECOND if row.expire_seconds else None
        entry.retired = False
        # The row's anchor, unless this beat (or, after a takeover, the last leader) has
        # already sent a later slot that is not written back yet. A slot sent on another
        # timing does not count: the change's time stays the anchor, so the next_run the
        # write path returned is the next send (the claim still keeps that slot single).
        same_timing = previous is not None and previous.timing is entry.timing
        entry.sent = max(previous.sent if same_timing else 0, claimed_slot if claimed_slot is not None else 0)
        entry.anchor = max(to_us(row.last_run_at or row.date_changed), entry.sent)
        entry.ran = row.last_run_at is not None or entry.sent > 0
        # A one-off that ran (its count, or a claim made after its last change: the leader
        # that sent it died before disabling it) is disabled now, not sent again.
        finished = row.total_run_count or (claimed_slot is not None and claimed_slot > entry.date_changed)
        if row.one_off and finished:
            entry.retired = True
            entry.due = self._now()
        else:
            entry.due = self._skip_stale(entry, entry.next_due())
        return entry

    def _compact(self):
        """Drop the shared copies and timings no entry uses any more (edits leave old ones behind)."""
        # An entry uses at most six (task, args, kwargs, headers, options, timing): rebuild once
        # twice that many are kept, so the work stays proportional to the edits.
        if len(self._shared) + len(self._timings) <= 12 * len(self._entries) + 100:
            return
        live = self._entries.values()
        self._shared = {}
        for entry in live:
            for value in (entry.task, entry.args, entry.kwargs, entry.headers):
                self._shared[value] = value
            self._shared[tuple(entry.options.items())] = entry.options
        timings = {id(entry.timing) for entry in live}
        self._timings = {key: timing for key, timing in self._timings.items() if id(timing) in timings}

    def _skip_stale(self, entry: Entry, due: int | None) -> int | None:
        """Move past slots too old to be worth sending; the youngest missed ones still go."""
        if due is None:
            return None
        now = self._now()
        if entry.retired:
            return due  # retiring is never stale
        if isinstance(entry.timing, Clocked):
            return max(due, now)  # a clocked run happens however late, as stock runs it: now
        window = max(entry.timing.after(due) - due, CATCH_UP)
        if due >= now - window:
            return due
        logger.warning(
            "beat: %s missed its slots from %s; sending only those after %s",
            entry.name,
            from_us(due),
            from_us(now - window),
        )
        entry.anchor, entry.ran = now - window, True
        return entry.next_due()


_TIMINGS = {"interval": Interval, "solar": Solar, "clocked": Clocked}
