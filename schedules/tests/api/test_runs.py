"""Run outcomes over HTTP: /schedules/{id}/runs, last_outcome and failing on schedules, the
per-task summary on a service, and /dispatches as the send part of the runs."""

import uuid
from datetime import timedelta
from http import HTTPStatus

import pytest

from schedules.tests.api.helpers import BASE, FAILS, SUCCEEDS, T0, expected_body, iso, record_run

pytestmark = pytest.mark.django_db


def test_runs_lists_each_run_newest_first_with_its_outcome(api, schedule):
    ok = record_run(schedule, minute=0, events=SUCCEEDS)
    failed = record_run(schedule, minute=15, events=FAILS)
    pending = record_run(schedule, minute=30, trigger="run_now")
    response = api.get(f"{BASE}/schedules/{schedule.pk}/runs")
    assert response.status_code == HTTPStatus.OK
    t = lambda minute, seconds: iso(T0 + timedelta(minutes=minute, seconds=seconds))  # noqa: E731
    assert response.json() == {
        "count": 3,
        "next": None,
        "previous": None,
        "results": [
            {
                "task_id": pending,
                "trigger": "run_now",
                "slot": t(30, 0),
                "sent_at": t(30, 1),
                "state": "sent",
                "received_at": None,
                "started_at": None,
                "finished_at": None,
                "runtime_seconds": None,
                "worker": None,
                "retries": 0,
                "error": None,
            },
            {
                "task_id": failed,
                "trigger": "schedule",
                "slot": t(15, 0),
                "sent_at": t(15, 1),
                "state": "failed",
                "received_at": t(15, 2),
                "started_at": t(15, 3),
                "finished_at": t(15, 4),
                "runtime_seconds": 1.0,
                "worker": "celery@w1",
                "retries": 0,
                "error": {"type": "KeyError", "message": "x"},
            },
            {
                "task_id": ok,
                "trigger": "schedule",
                "slot": t(0, 0),
                "sent_at": t(0, 1),
                "state": "succeeded",
                "received_at": t(0, 2),
                "started_at": t(0, 3),
                "finished_at": t(0, 5),
                "runtime_seconds": 2.0,
                "worker": "celery@w1",
                "retries": 0,
                "error": None,
            },
        ],
    }


def test_runs_filter_by_state_and_paginate(api, schedule):
    for minute in range(3):
        record_run(schedule, minute=minute, events=FAILS)
    record_run(schedule, minute=10, events=SUCCEEDS)
    response = api.get(f"{BASE}/schedules/{schedule.pk}/runs?state=failed&page_size=2")
    body = response.json()
    assert (response.status_code, body["count"], body["previous"]) == (HTTPStatus.OK, 3, None)
    assert body["next"].endswith(f"/schedules/{schedule.pk}/runs?page=2&page_size=2&state=failed")
    assert [run["slot"] for run in body["results"]] == [iso(T0 + timedelta(minutes=2)), iso(T0 + timedelta(minutes=1))]


@pytest.mark.parametrize(
    ("query", "errors"),
    [
        ("state=done", {"state": ['"done" is not a valid choice.']}),
        ("ordering=slot", {"ordering": ["Unknown query parameter; accepted: state, page, page_size."]}),
    ],
)
def test_runs_refuse_an_unknown_state_or_parameter(api, schedule, query, errors):
    response = api.get(f"{BASE}/schedules/{schedule.pk}/runs?{query}")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["errors"] == errors


def test_runs_of_a_missing_schedule_is_404(api):
    response = api.get(f"{BASE}/schedules/{uuid.uuid4()}/runs")
    assert (response.status_code, response.json()) == (
        HTTPStatus.NOT_FOUND,
        {"detail": "Schedule not found", "code": "not_found"},
    )


def test_a_schedule_shows_its_last_outcome_and_whether_it_is_failing(api, schedule):
    """failing follows the newest finished run: a run still going does not clear it."""
    record_run(schedule, minute=0, events=FAILS)
    record_run(schedule, minute=15, events=[("task-received", 2, {})])
    response = api.get(f"{BASE}/schedules/{schedule.pk}")
    assert response.json() == expected_body(
        schedule.pk,
        next_run=response.json()["next_run"],
        description="Every 15 minutes",
        last_outcome={"state": "received", "at": iso(T0 + timedelta(minutes=15, seconds=2))},
        failing=True,
    )
    record_run(schedule, minute=30, events=SUCCEEDS)
    body = api.get(f"{BASE}/schedules/{schedule.pk}").json()
    assert (body["last_outcome"], body["failing"]) == (
        {"state": "succeeded", "at": iso(T0 + timedelta(minutes=30, seconds=5))},
        False,
    )


def test_the_schedule_list_costs_the_same_queries_with_runs(api, make_schedule, django_assert_num_queries):
    """Outcomes come in the list's query: 3 schedules with runs cost what 1 does."""
    first = make_schedule(cron_expression="0 * * * *")
    record_run(first, minute=0, events=FAILS)
    with django_assert_num_queries(3):  # the API key, the count, the page: no query per row
        assert api.get(f"{BASE}/schedules").json()["results"][0]["failing"] is True
    for minute, expression in ((5, "0 1 * * *"), (10, "0 2 * * *")):
        record_run(make_schedule(cron_expression=expression), minute=minute, events=SUCCEEDS)
    with django_assert_num_queries(3):
        listed = api.get(f"{BASE}/schedules").json()["results"]
    assert sorted((row["last_outcome"]["state"], row["failing"]) for row in listed) == [
        ("failed", True),
        ("succeeded", False),
        ("succeeded", False),
    ]


def test_a_service_shows_the_last_outcome_of_each_task(api, service, make_schedule):
    """Per task, across its schedules: the newest run, and failing if any schedule is."""
    logs_hourly = make_schedule(cron_expression="0 * * * *")
    logs_daily = make_schedule(cron_expression="0 0 * * *")
    make_schedule(task_name="index_code", cron_expression="0 3 * * *")
    record_run(logs_hourly, minute=0, events=FAILS)
    record_run(logs_daily, minute=5, events=SUCCEEDS)
    response = api.get(f"{BASE}/services/web-app")
    assert response.status_code == HTTPStatus.OK
    assert response.json() == {
        "id": "web-app",
        "name": "Web application",
        "description": "",
        "schedule_count": 3,
        "created_at": iso(service.created_at),
        "updated_at": iso(service.updated_at),
        "last_outcomes": {
            "fetch_logs": {"state": "succeeded", "at": iso(T0 + timedelta(minutes=5, seconds=5)), "failing": True},
            "index_code": None,
        },
    }


def test_dispatches_is_the_send_part_of_the_runs(api, schedule):
    task_id = record_run(schedule, minute=0, events=SUCCEEDS)
    response = api.get(f"{BASE}/schedules/{schedule.pk}/dispatches")
    assert response.json() == [
        {"slot": iso(T0), "task_id": task_id, "sent_at": iso(T0 + timedelta(seconds=1))},
    ]
