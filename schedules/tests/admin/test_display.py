"""Display helpers: UTC times in full and to the minute, counts."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from schedules.admin.display import plural, utc, utc_minute

PARIS_WINTER = timezone(timedelta(hours=1))


@pytest.mark.parametrize(
    ("moment", "full", "compact"),
    [
        (datetime(2026, 12, 1, 15, 5, 59, 900_000, tzinfo=PARIS_WINTER), "2026-12-01 14:05:59 UTC", "2026-12-01 14:05"),
        (datetime(2026, 12, 31, 23, 59, 0, tzinfo=UTC), "2026-12-31 23:59:00 UTC", "2026-12-31 23:59"),
        (None, "-", "-"),
    ],
)
def test_utc_shows_utc_in_full_and_lists_drop_the_seconds(moment, full, compact):
    """Times convert to UTC; the list form truncates to the minute (never rounds into the next one)."""
    assert (utc(moment), utc_minute(moment)) == (full, compact)


@pytest.mark.parametrize(("count", "expected"), [(0, "0 schedules"), (1, "1 schedule"), (2, "2 schedules")])
def test_plural_adds_an_s_except_for_one(count, expected):
    """Messages count what they did in plain English."""
    assert plural(count, "schedule") == expected
