"""The task catalogue and the cron preview."""

from datetime import UTC, datetime, timedelta
from http import HTTPStatus

import pytest

from schedules import catalogue
from schedules.tests.api.helpers import BASE, REFUSAL

pytestmark = pytest.mark.django_db


def test_tasks_lists_the_catalogue(api):
    """The catalogue as configured, with each task's Celery name, queue and bounds."""
    response = api.get(f"{BASE}/tasks")
    assert response.status_code == HTTPStatus.OK
    assert response.json() == [
        {
            "name": task.name,
            "task_path": task.task,
            "queue": "default",
            "description": task.description,
            "min_interval_seconds": 60,
            "max_interval_seconds": 86400,
            "default_cron_expression": None,
        }
        for task in (catalogue.get_task(name) for name in ("fetch_logs", "generate_rca", "index_code"))
    ]


def test_cron_preview_describes_and_lists_next_runs(api):
    """A valid expression: normalised, in words, the next runs in UTC for its time zone."""
    response = api.get(f"{BASE}/cron/preview", {"expression": "0 9 * * MON", "timezone": "Europe/Paris", "count": 2})
    assert response.status_code == HTTPStatus.OK
    body = response.json()
    runs = [datetime.fromisoformat(run) for run in body.pop("next_runs")]
    assert body == {
        "valid": True,
        "expression": "0 9 * * 1",
        "resolved_expression": "0 9 * * 1",
        "description": "At 09:00, only on Monday",
        "error": None,
    }
    assert len(runs) == 2 and runs[1] - runs[0] == timedelta(days=7)
    assert all(run.utcoffset() == timedelta(0) and run.weekday() == 0 and run.hour in (7, 8) for run in runs)
    assert runs[0] > datetime.now(UTC)


def test_cron_preview_explains_an_invalid_expression(api):
    """An invalid expression answers 200 with valid=false and the reason, for the UI to show."""
    response = api.get(f"{BASE}/cron/preview", {"expression": "*/0 * * * *"})
    assert response.status_code == HTTPStatus.OK
    assert response.json() == {
        "valid": False,
        "expression": "*/0 * * * *",
        "resolved_expression": None,
        "description": None,
        "next_runs": [],
        "error": "minute: step 0 must be between 1 and 59.",
    }


BAD_PREVIEW_QUERIES = {
    "preview count zero": (
        "GET",
        "/cron/preview?expression=*+*+*+*+*&count=0",
        {},
        HTTPStatus.BAD_REQUEST,
        "invalid",
        {"count"},
    ),
    "preview count too high": (
        "GET",
        "/cron/preview?expression=*+*+*+*+*&count=51",
        {},
        HTTPStatus.BAD_REQUEST,
        "invalid",
        {"count"},
    ),
    "preview bad timezone": (
        "GET",
        "/cron/preview?expression=*+*+*+*+*&timezone=Nowhere",
        {},
        HTTPStatus.BAD_REQUEST,
        "invalid",
        {"timezone"},
    ),
    "preview without expression": ("GET", "/cron/preview", {}, HTTPStatus.BAD_REQUEST, "invalid", {"expression"}),
}


@pytest.mark.parametrize(REFUSAL, list(BAD_PREVIEW_QUERIES.values()), ids=list(BAD_PREVIEW_QUERIES))
def test_bad_preview_query_is_refused(assert_refused, method, path, request_kwargs, status, code, error_fields):
    """A missing expression, a bad time zone or count is a 400 naming the parameter."""
    assert_refused(method, path, request_kwargs, status, code, error_fields)
