"""The in-memory table on its own: rows in, entries out, no database."""

import tracemalloc
from collections import namedtuple
from datetime import UTC, datetime

from schedules.beat.clock import to_us
from schedules.beat.table import ROW_FIELDS, Table

Row = namedtuple("Row", ROW_FIELDS)
NOW = datetime(2026, 12, 1, 20, 30, tzinfo=UTC)


def interval_row(row_id: int, every: int, args: str) -> Row:
    fields = dict.fromkeys(ROW_FIELDS)
    fields.update(
        id=row_id,
        name=f"row-{row_id}",
        task="t",
        args=args,
        kwargs="{}",
        headers="{}",
        enabled=True,
        one_off=False,
        date_changed=NOW,
        interval_id=every,
        interval__every=every,
        interval__period="seconds",
        total_run_count=0,
    )
    return Row(**fields)


def test_old_versions_of_edited_rows_are_not_kept():
    """Memory follows the rows as they are now: each edit's args and timing replace the old
    ones (every version was kept before: 3.1 MB after 800 edits of 10 rows)."""
    table = Table(clock=lambda: to_us(NOW))

    def edit(rounds: range):
        for round_ in rounds:
            for row_id in range(10):
                table.apply(interval_row(row_id, 3600 + round_, f'["{round_:05d}{"x" * 300}"]'))
            table.pop_due(0, 0)  # what a tick does: superseded heap items are dropped

    edit(range(1000))  # past every bound on superseded items
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    edit(range(1000, 3000))
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert grown < 300_000, f"{grown:,} bytes kept after 2,000 more edits of 10 rows"
