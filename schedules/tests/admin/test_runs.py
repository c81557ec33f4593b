"""Runs in the admin: the schedule's last 50 runs with coloured states, errors and the SVG chart;
the last outcome on the schedules list and the service page; the "Failing" filter."""

import re
from http import HTTPStatus

import pytest

from schedules.tests.api.test_runs import FAILS, SUCCEEDS, record_run

from .helpers import SCHEDULES_URL, SERVICES_URL

pytestmark = pytest.mark.django_db


def test_schedule_page_lists_runs_with_states_errors_and_a_chart(admin_client, make_schedule):
    schedule = make_schedule()
    record_run(schedule, minute=0, events=SUCCEEDS)
    record_run(schedule, minute=15, events=FAILS)
    record_run(schedule, minute=30)
    page = admin_client.get(f"{SCHEDULES_URL}{schedule.pk}/change/")
    assert page.status_code == HTTPStatus.OK
    html = page.content.decode()
    rows = re.findall(
        r"<tr><td>(2026-01-31 12:\d\d:00 UTC)</td><td>(.*?)</td><td>(.*?)</td>.*?"
        r'<td class="run-error">(.*?)</td></tr>',
        html,
    )
    assert [(slot, trigger, re.sub(r"<.*?>", "", state), error) for slot, trigger, state, error in rows] == [
        ("2026-01-31 12:30:00 UTC", "schedule", "\u2192 sent", ""),
        ("2026-01-31 12:15:00 UTC", "schedule", "\u2716 failed", "KeyError: x"),
        ("2026-01-31 12:00:00 UTC", "schedule", "\u2714 succeeded", ""),
    ]
    assert 'class="run-state run-failed" style="color: #b91c1c"' in html
    [chart] = re.findall(r'<svg class="runs-chart".*?</svg>', html, re.DOTALL)
    # Runtime bars for the two finished runs, lateness bars for all three, each titled.
    assert re.findall(r"<title>(.*?)</title>", chart) == [
        "2026-01-31 12:00:00 UTC: 2.000 s",
        "2026-01-31 12:15:00 UTC: 1.000 s",
        "2026-01-31 12:00:00 UTC: 1.000 s",
        "2026-01-31 12:15:00 UTC: 1.000 s",
        "2026-01-31 12:30:00 UTC: 1.000 s",
    ]


def test_schedule_page_without_runs_says_so(admin_client, make_schedule):
    html = admin_client.get(f"{SCHEDULES_URL}{make_schedule().pk}/change/").content.decode()
    assert "- (none yet)" in html and "runs-chart" not in html


def _outcome(cell: str) -> str:
    """The outcome in a last-run cell as a person reads it: the icon, and the state its tooltip names."""
    badge = re.search(r'<span class="run-state[^>]* title="(\w+) since [^"]*"[^>]*>(.)</span>', cell)
    return f"{badge.group(2)} ({badge.group(1)})" if badge else "-"


def _outcomes(response) -> dict:
    return dict(
        re.findall(
            r'<t[hd] class="field-task">(?:<a [^>]*>)?(\w+).*?<td class="field-last_run">(.*?)</td>',
            response.content.decode(),
            re.DOTALL,
        )
    )


def test_list_shows_the_last_outcome_and_filters_failing(admin_client, make_schedule):
    failing = make_schedule(cron_expression="0 * * * *")
    make_schedule(task_name="index_code", cron_expression="0 3 * * *")
    record_run(failing, minute=0, events=FAILS)
    listed = {task: _outcome(cell) for task, cell in _outcomes(admin_client.get(SCHEDULES_URL)).items()}
    assert listed == {"fetch_logs": "\u2716 (failed)", "index_code": "-"}
    assert list(_outcomes(admin_client.get(f"{SCHEDULES_URL}?failing=yes"))) == ["fetch_logs"]
    assert list(_outcomes(admin_client.get(f"{SCHEDULES_URL}?failing=no"))) == ["index_code"]


def test_service_page_shows_each_schedules_last_outcome(admin_client, make_schedule):
    record_run(make_schedule(), minute=0, events=SUCCEEDS)
    html = admin_client.get(f"{SERVICES_URL}web-app/change/").content.decode()
    [cell] = re.findall(r'<td class="field-last_run">(.*?)</td>', html, re.DOTALL)
    assert _outcome(cell) == "\u2714 (succeeded)"
