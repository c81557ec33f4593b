"""``GET /load``: the sends ahead per minute or hour, stacked by task, and the busiest minutes."""

from datetime import UTC, datetime, timedelta
from http import HTTPStatus

import pytest

from schedules import load, selectors
from schedules.tests.api.helpers import BASE, REFUSAL, iso

pytestmark = pytest.mark.django_db


@pytest.fixture
def herd(make_service, make_schedule):
    """Two services on */15 fetch_logs, one H/15 generate_rca (web-app: 9,24,39,54), one disabled."""
    other = make_service("api", "API")
    make_schedule(cron_expression="*/15 * * * *")
    make_schedule(other, cron_expression="*/15 * * * *")
    make_schedule(task_name="generate_rca", cron_expression="H/15 * * * *")
    make_schedule(task_name="index_code", cron_expression="* * * * *", enabled=False)


def test_load_counts_sends_per_minute_stacked_by_task(api, herd):
    """An hour ahead: fetch_logs twice on each quarter hour, generate_rca on its own minutes; the
    quarter hours are the busiest, all their sends at second 0; disabled schedules count for nothing."""
    response = api.get(f"{BASE}/load", {"hours": 1})
    assert response.status_code == HTTPStatus.OK
    body = response.json()
    start = datetime.fromisoformat(body["start"])
    minutes = [start + timedelta(minutes=offset) for offset in range(1, 60)]
    buckets = []
    for minute in minutes:
        by_task = {"fetch_logs": 2} if minute.minute % 15 == 0 else {}
        if minute.minute in (9, 24, 39, 54):
            by_task["generate_rca"] = 1
        if by_task:
            buckets.append({"at": iso(minute), "total": sum(by_task.values()), "by_task": by_task})
    quarters = [bucket for bucket in buckets if bucket["total"] == 2]
    assert body == {
        "start": iso(start),
        "end": iso(start + timedelta(hours=1)),
        "resolution": "minute",
        "tasks": ["fetch_logs", "generate_rca"],
        "schedules": 3,
        "distinct_timings": 2,
        "buckets": buckets,
        "busiest": quarters + [bucket for bucket in buckets if bucket["total"] == 1][: 5 - len(quarters)],
        "busiest_minute_seconds": [{"second": 0, "total": 2, "by_task": {"fetch_logs": 2}}],
    }
    assert start.second == 0 and datetime.now(UTC) - start < timedelta(minutes=1)


def test_load_by_hour_sums_the_minutes(api, herd):
    """resolution=hour: one bucket an hour, the sum of its minutes."""
    body = api.get(f"{BASE}/load", {"hours": 2, "resolution": "hour"}).json()
    start = datetime.fromisoformat(body["start"])
    # The start minute's own sends (second 0) are past; each hour holds four quarter hours.
    first_quarters = sum(1 for offset in range(1, 60) if (start + timedelta(minutes=offset)).minute % 15 == 0)
    first_rca = sum(1 for offset in range(1, 60) if (start + timedelta(minutes=offset)).minute in (9, 24, 39, 54))
    assert [(bucket["at"], bucket["by_task"]) for bucket in body["buckets"]] == [
        (iso(start), {"fetch_logs": 2 * first_quarters, "generate_rca": first_rca}),
        (iso(start + timedelta(hours=1)), {"fetch_logs": 8, "generate_rca": 4}),
    ]


def test_load_costs_three_queries_whatever_the_number_of_schedules(
    make_service, make_schedule, django_assert_num_queries
):
    """Grouped by distinct timing: one grouped query for 31 schedules on three timings, one look-up
    of the crontab rows it names and one of the interval rows."""
    for number in range(15):
        service = make_service(f"service-{number}", "S")
        make_schedule(service, cron_expression="*/15 * * * *")
        make_schedule(service, task_name="index_code", cron_expression="0 * * * *")
    make_schedule(service, task_name="generate_rca", schedule_type="interval", interval_seconds=900)
    with django_assert_num_queries(3):
        upcoming = selectors.upcoming_load(hours=24, resolution="minute")
    assert (upcoming.schedules, upcoming.distinct_timings) == (31, 3)
    assert upcoming.busiest[0].by_task == {"fetch_logs": 15, "index_code": 15}


def test_interval_phase_places_its_sends_on_their_second(make_schedule):
    """An interval counts from its anchor: its sends fall on the anchor's second, jitter included."""
    schedule = make_schedule(schedule_type="interval", interval_seconds=600, jitter_seconds=60)
    anchor = schedule.periodic_task.date_changed
    (group,) = selectors.enabled_timing_groups()
    assert group == load.TimingGroup("fetch_logs", None, "UTC", 600, int(anchor.timestamp()) % 600, 1)
    upcoming = load.upcoming_load([group], now=anchor, hours=1, resolution="minute")
    first = anchor.replace(microsecond=0) + timedelta(seconds=600)
    end = anchor.replace(second=0, microsecond=0) + timedelta(hours=1)
    sends = [first + timedelta(seconds=600 * step) for step in range(6)]
    assert [bucket.at for bucket in upcoming.buckets] == [send.replace(second=0) for send in sends if send < end]
    assert upcoming.busiest_minute_seconds == [load.Second(first.second, 1, {"fetch_logs": 1})]


BAD_LOAD_QUERIES = {
    "hours zero": ("GET", "/load?hours=0", {}, HTTPStatus.BAD_REQUEST, "invalid", {"hours"}),
    "hours over two days": ("GET", "/load?hours=49", {}, HTTPStatus.BAD_REQUEST, "invalid", {"hours"}),
    "resolution second": ("GET", "/load?resolution=second", {}, HTTPStatus.BAD_REQUEST, "invalid", {"resolution"}),
    "unknown parameter": ("GET", "/load?task=fetch_logs", {}, HTTPStatus.BAD_REQUEST, "invalid", {"task"}),
}


@pytest.mark.parametrize(REFUSAL, list(BAD_LOAD_QUERIES.values()), ids=list(BAD_LOAD_QUERIES))
def test_bad_load_query_is_refused(assert_refused, method, path, request_kwargs, status, code, error_fields):
    """Hours outside 1-48, a resolution other than minute or hour, or an unknown parameter: a 400 naming it."""
    assert_refused(method, path, request_kwargs, status, code, error_fields)
