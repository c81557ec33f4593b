"""Spreading schedules over the API: ``H`` cron fields and interval jitter, as callers see them."""

from datetime import UTC, datetime, timedelta
from http import HTTPStatus

import pytest
from django.core.exceptions import ImproperlyConfigured
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import ModelEntry

from schedules import catalogue, timing
from schedules.models import TaskSchedule
from schedules.tests.api.helpers import BASE, REFUSAL, expected_body, iso

pytestmark = pytest.mark.django_db


def _next_minute_in(minutes: set[int], after: datetime) -> datetime:
    slot = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while slot.minute not in minutes:
        slot += timedelta(minutes=1)
    return slot


def test_h_schedule_shows_what_was_written_and_what_beat_runs(api, service):
    """H/15 for web-app / fetch_logs: the expression as written, its resolved crontab (stored in
    beat's row), words and next run of the resolved form."""
    before = datetime.now(UTC)
    response = api.post(
        f"{BASE}/services/web-app/schedules",
        {"task_name": "fetch_logs", "cron_expression": "H/15 * * * *"},
        format="json",
    )
    assert response.status_code == HTTPStatus.CREATED
    body = response.json()
    assert body == expected_body(
        body["id"],
        cron_expression="H/15 * * * *",
        resolved_cron_expression="4,19,34,49 * * * *",
        jitter_seconds=None,
        description="At 4, 19, 34, and 49 minutes past the hour",
        next_run=iso(_next_minute_in({4, 19, 34, 49}, before)),
    )
    crontab = PeriodicTask.objects.get(luffy_schedule=body["id"]).crontab
    assert (crontab.minute, crontab.hour, crontab.day_of_month, crontab.month_of_year, crontab.day_of_week) == (
        "4,19,34,49",
        "*",
        "*",
        "*",
        "*",
    )


def test_h_schedule_next_run_is_what_the_stock_scheduler_computes(api, service):
    """django-celery-beat's own ModelEntry (what `beat -S django` runs) is due at the next_run the API reports."""
    body = api.post(
        f"{BASE}/services/web-app/schedules",
        {"task_name": "fetch_logs", "cron_expression": "H H(0-11) * * *"},
        format="json",
    ).json()
    assert body["resolved_cron_expression"] == "4 4 * * *"

    now = datetime.now(UTC)
    due, seconds_left = ModelEntry(PeriodicTask.objects.get(luffy_schedule=body["id"])).is_due()

    assert not due
    assert abs(now + timedelta(seconds=seconds_left) - datetime.fromisoformat(body["next_run"])) < timedelta(seconds=1)


def test_changing_the_task_resolves_h_again(api, make_schedule):
    """H hashes the service and the task: the same expression for another task lands elsewhere."""
    schedule = make_schedule(cron_expression="H/15 * * * *")
    response = api.patch(f"{BASE}/schedules/{schedule.pk}", {"task_name": "generate_rca"}, format="json")
    assert response.status_code == HTTPStatus.OK
    assert (response.json()["cron_expression"], response.json()["resolved_cron_expression"]) == (
        "H/15 * * * *",
        "9,24,39,54 * * * *",
    )


def test_same_h_expression_twice_for_one_task_is_a_duplicate(api, make_schedule):
    """Same service, task and H expression resolve to the same slots: 409, saying how to place a second one."""
    existing = make_schedule(cron_expression="H/15 * * * *")
    response = api.post(
        f"{BASE}/services/web-app/schedules",
        {"task_name": "fetch_logs", "cron_expression": "H/15 * * * *"},
        format="json",
    )
    assert response.status_code == HTTPStatus.CONFLICT
    assert response.json() == {
        "detail": f"Service 'web-app' already has this fetch_logs schedule (id {existing.pk}). H resolves from "
        "the service and task, so the same expression lands on the same slots; place a second one with "
        "H(range) or plain values.",
        "code": "conflict",
        "existing_id": str(existing.pk),
    }


def test_h_duplicate_compares_the_resolved_timing(api, make_schedule):
    """A plain expression equal to the H one's resolved form is the same timing: 409."""
    make_schedule(cron_expression="H/15 * * * *")
    response = api.post(
        f"{BASE}/services/web-app/schedules",
        {"task_name": "fetch_logs", "cron_expression": "4,19,34,49 * * * *"},
        format="json",
    )
    assert response.status_code == HTTPStatus.CONFLICT


def test_interval_jitter_shifts_the_next_run_by_a_stable_offset(api, service):
    """jitter_seconds 90 on 900 s: next_run is the change + 900 s + this schedule's own offset (0-90 s),
    which the stock scheduler's ModelEntry agrees with."""
    response = api.post(
        f"{BASE}/services/web-app/schedules",
        {"task_name": "fetch_logs", "schedule_type": "interval", "interval_seconds": 900, "jitter_seconds": 90},
        format="json",
    )
    assert response.status_code == HTTPStatus.CREATED
    body = response.json()
    offset = timing.jitter_offset(
        timing.Timing(timing.INTERVAL, None, 900, timing.UTC, jitter_seconds=90), "web-app:fetch_logs"
    )
    assert offset == 2
    created = TaskSchedule.objects.get(pk=body["id"]).created_at
    next_run = datetime.fromisoformat(body["next_run"])
    assert abs(next_run - (created + timedelta(seconds=900 + offset))) < timedelta(seconds=1)
    assert body == expected_body(
        body["id"], jitter_seconds=90, description="Every 15 minutes, jitter up to 90 s", next_run=body["next_run"]
    )
    now = datetime.now(UTC)
    due, seconds_left = ModelEntry(PeriodicTask.objects.get(luffy_schedule=body["id"])).is_due()
    assert not due and abs(now + timedelta(seconds=seconds_left) - next_run) < timedelta(seconds=1)


def test_switching_to_cron_clears_the_jitter(api, make_schedule):
    """Jitter belongs to intervals: a switch to cron drops it."""
    schedule = make_schedule(schedule_type="interval", interval_seconds=600, jitter_seconds=60)
    response = api.patch(
        f"{BASE}/schedules/{schedule.pk}", {"schedule_type": "cron", "cron_expression": "H * * * *"}, format="json"
    )
    assert response.status_code == HTTPStatus.OK
    assert (response.json()["jitter_seconds"], response.json()["cron_expression"]) == (None, "H * * * *")


def _create(body, fields):
    return (
        "POST",
        "/services/web-app/schedules",
        {"json_body": {"task_name": "fetch_logs", **body}},
        HTTPStatus.BAD_REQUEST,
        "invalid",
        fields,
    )


BAD_SPREAD = {
    "H step too large": _create({"cron_expression": "H/60 * * * *"}, {"cron_expression"}),
    "H malformed": _create({"cron_expression": "H(0-29 * * * *"}, {"cron_expression"}),
    "jitter over a tenth": _create(
        {"schedule_type": "interval", "interval_seconds": 900, "jitter_seconds": 91}, {"jitter_seconds"}
    ),
    "jitter not an integer": _create(
        {"schedule_type": "interval", "interval_seconds": 900, "jitter_seconds": "60"}, {"jitter_seconds"}
    ),
    "jitter negative": _create(
        {"schedule_type": "interval", "interval_seconds": 900, "jitter_seconds": -1}, {"jitter_seconds"}
    ),
    "jitter on cron": _create({"cron_expression": "*/15 * * * *", "jitter_seconds": 60}, {"jitter_seconds"}),
    "preview H with service but no task": (
        "GET",
        "/cron/preview?expression=H+*+*+*+*&service_id=web-app",
        {},
        HTTPStatus.BAD_REQUEST,
        "invalid",
        {"task_name"},
    ),
    "preview with key and service": (
        "GET",
        "/cron/preview?expression=H+*+*+*+*&service_id=web-app&task_name=fetch_logs&key=x",
        {},
        HTTPStatus.BAD_REQUEST,
        "invalid",
        {"key"},
    ),
    "preview with an unknown task": (
        "GET",
        "/cron/preview?expression=H+*+*+*+*&service_id=web-app&task_name=nope",
        {},
        HTTPStatus.BAD_REQUEST,
        "invalid",
        {"task_name"},
    ),
}


@pytest.mark.parametrize(REFUSAL, list(BAD_SPREAD.values()), ids=list(BAD_SPREAD))
def test_bad_spread_input_is_refused(assert_refused, service, method, path, request_kwargs, status, code, error_fields):
    """Bad H forms, jitter out of bounds or on cron, and incomplete preview keys are 400s naming the field."""
    assert_refused(method, path, request_kwargs, status, code, error_fields)


def test_jitter_over_a_tenth_says_the_bound(api, service):
    """The message names the largest jitter the interval allows."""
    response = api.post(
        f"{BASE}/services/web-app/schedules",
        {"task_name": "fetch_logs", "schedule_type": "interval", "interval_seconds": 900, "jitter_seconds": 91},
        format="json",
    )
    assert response.json() == {
        "detail": "jitter_seconds: jitter_seconds may be at most a tenth of the interval: 90 for 900 s.",
        "code": "invalid",
        "errors": {"jitter_seconds": ["jitter_seconds may be at most a tenth of the interval: 90 for 900 s."]},
    }


@pytest.mark.parametrize(
    "query",
    [{"service_id": "web-app", "task_name": "fetch_logs"}, {"key": "web-app:fetch_logs"}],
    ids=["service and task", "key"],
)
def test_cron_preview_shows_where_h_lands(api, query):
    """The preview resolves H for a service and task (which need not exist yet) or a key."""
    response = api.get(f"{BASE}/cron/preview", {"expression": "H/15 * * * *", "count": 2, **query})
    assert response.status_code == HTTPStatus.OK
    body = response.json()
    runs = [datetime.fromisoformat(run) for run in body.pop("next_runs")]
    assert body == {
        "valid": True,
        "expression": "H/15 * * * *",
        "resolved_expression": "4,19,34,49 * * * *",
        "description": "At 4, 19, 34, and 49 minutes past the hour",
        "error": None,
    }
    assert len(runs) == 2 and runs[0] < runs[1] and {run.minute for run in runs} <= {4, 19, 34, 49}


def test_cron_preview_of_h_without_a_key_explains(api):
    """Without a service and task (or key) H has no value: valid false with the reason."""
    response = api.get(f"{BASE}/cron/preview", {"expression": "H/15 * * * *"})
    assert response.json() == {
        "valid": False,
        "expression": "H/15 * * * *",
        "resolved_expression": None,
        "description": None,
        "next_runs": [],
        "error": "H picks stable values from the schedule's service and task; it has no value without them "
        "(the preview takes service_id and task_name, or key).",
    }


@pytest.fixture
def h15_default(settings):
    """The catalogue gives fetch_logs the default H/15 * * * *."""
    settings.LUFFY_TASK_CATALOGUE = [
        {**entry, "default_cron_expression": "H/15 * * * *"} if entry["name"] == "fetch_logs" else entry
        for entry in settings.LUFFY_TASK_CATALOGUE
    ]


def test_create_without_timing_takes_the_catalogue_default(api, h15_default):
    """Services registered with a bare {"task_name"} get the task's H/15 default, each on its own minutes."""
    resolved = {}
    for service_id in ("billing", "search"):
        assert api.put(f"{BASE}/services/{service_id}", {"name": service_id}, format="json").status_code == (
            HTTPStatus.CREATED
        )
        response = api.post(f"{BASE}/services/{service_id}/schedules", {"task_name": "fetch_logs"}, format="json")
        assert response.status_code == HTTPStatus.CREATED
        body = response.json()
        assert body == expected_body(body["id"], next_run=body["next_run"], description=body["description"])
        resolved[service_id] = (body["cron_expression"], body["resolved_cron_expression"])
    assert resolved == {
        "billing": ("H/15 * * * *", "0,15,30,45 * * * *"),
        "search": ("H/15 * * * *", "8,23,38,53 * * * *"),
    }
    assert api.get(f"{BASE}/tasks").json()[0]["default_cron_expression"] == "H/15 * * * *"


def test_without_a_default_a_create_without_timing_is_refused(api, service):
    """The seed catalogue has no defaults: a cron schedule still needs its expression."""
    response = api.post(f"{BASE}/services/web-app/schedules", {"task_name": "fetch_logs"}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["errors"] == {"cron_expression": ["cron_expression is required for a cron schedule."]}


def test_an_update_never_falls_back_to_the_default(api, make_schedule, h15_default):
    """Clearing the expression of an existing schedule is an error, not a silent switch to the default."""
    schedule = make_schedule(cron_expression="0 * * * *")
    response = api.patch(f"{BASE}/schedules/{schedule.pk}", {"cron_expression": None}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["errors"] == {"cron_expression": ["cron_expression is required for a cron schedule."]}


def test_a_bad_catalogue_default_stops_the_catalogue_loading(settings):
    """A default beat could not run is a configuration error, named with its task."""
    entry = {**settings.LUFFY_TASK_CATALOGUE[0], "default_cron_expression": "H/0 * * * *"}
    with pytest.raises(ImproperlyConfigured) as refused:
        catalogue.load_catalogue([entry], known_queues=settings.LUFFY_QUEUES)
    assert str(refused.value) == (
        "LUFFY_TASK_CATALOGUE[0]: default_cron_expression of 'fetch_logs': minute: step 0 must be between 1 and 59."
    )
