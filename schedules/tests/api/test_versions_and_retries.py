"""ETag / If-Match (no lost updates) and Idempotency-Key (a retried POST acts once)."""

from http import HTTPStatus

import pytest
from django.utils import timezone

from schedules import health, services
from schedules.models import IdempotencyRecord, TaskSchedule
from schedules.services import run_now
from schedules.tests.api.helpers import BASE, database_state, expected_body

pytestmark = pytest.mark.django_db

CREATE = f"{BASE}/services/web-app/schedules"
BODY = {"task_name": "fetch_logs", "cron_expression": "0 * * * *"}


def _assert_precondition_failed(response, thing, current_etag):
    assert response.status_code == HTTPStatus.PRECONDITION_FAILED
    assert response.json() == {
        "detail": f"The {thing} changed since you read it (its ETag is now {current_etag}); read it again and retry.",
        "code": "precondition_failed",
    }
    assert response["ETag"] == current_etag


# --- ETag / If-Match ----------------------------------------------------------------------


def test_schedule_read_carries_an_etag_that_run_state_does_not_move(api, schedule):
    """The ETag covers what a caller can change: a dispatch (last_run, count) leaves it as it was."""
    etag = api.get(f"{BASE}/schedules/{schedule.pk}")["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    periodic_task = schedule.periodic_task
    periodic_task.last_run_at, periodic_task.total_run_count = timezone.now(), 7
    periodic_task.save()
    assert api.get(f"{BASE}/schedules/{schedule.pk}")["ETag"] == etag
    api.patch(f"{BASE}/schedules/{schedule.pk}", {"enabled": False}, format="json")
    assert api.get(f"{BASE}/schedules/{schedule.pk}")["ETag"] != etag


def test_if_match_loses_the_race_with_412(api, schedule):
    """Two callers read one version; the first write wins, the second gets 412 and writes nothing."""
    etag = api.get(f"{BASE}/schedules/{schedule.pk}")["ETag"]
    first = api.patch(
        f"{BASE}/schedules/{schedule.pk}", {"cron_expression": "0 2 * * *"}, format="json", HTTP_IF_MATCH=etag
    )
    assert first.status_code == HTTPStatus.OK
    assert first["ETag"] == api.get(f"{BASE}/schedules/{schedule.pk}")["ETag"] != etag
    before = database_state()

    second = api.patch(
        f"{BASE}/schedules/{schedule.pk}", {"cron_expression": "0 3 * * *"}, format="json", HTTP_IF_MATCH=etag
    )

    _assert_precondition_failed(second, "schedule", first["ETag"])
    assert database_state() == before


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("put", "/schedules/{id}", {"data": {"enabled": False}, "format": "json"}),
        ("delete", "/schedules/{id}", {}),
        ("post", "/schedules/{id}/toggle?enabled=false", {}),
    ],
)
def test_stale_if_match_is_refused_on_every_schedule_write(api, schedule, method, path, kwargs):
    """PUT, DELETE and toggle honour If-Match as PATCH does."""
    current = api.get(f"{BASE}/schedules/{schedule.pk}")["ETag"]
    before = database_state()
    response = getattr(api, method)(BASE + path.format(id=schedule.pk), HTTP_IF_MATCH='"stale"', **kwargs)
    _assert_precondition_failed(response, "schedule", current)
    assert database_state() == before


def test_matching_if_match_and_star_are_accepted(api, schedule):
    """The current ETag (or `*`) lets the write through; toggle answers the new ETag."""
    etag = api.get(f"{BASE}/schedules/{schedule.pk}")["ETag"]
    toggled = api.post(f"{BASE}/schedules/{schedule.pk}/toggle?enabled=false", HTTP_IF_MATCH=etag)
    assert toggled.status_code == HTTPStatus.OK
    assert toggled["ETag"] == api.get(f"{BASE}/schedules/{schedule.pk}")["ETag"]
    assert api.delete(f"{BASE}/schedules/{schedule.pk}", HTTP_IF_MATCH="*").status_code == HTTPStatus.OK


def test_service_etag_guards_put_patch_and_delete(api, service):
    """Services carry an ETag too; a stale one is 412 on PUT, PATCH and DELETE."""
    read = api.get(f"{BASE}/services/web-app")
    etag = read["ETag"]
    changed = api.patch(f"{BASE}/services/web-app", {"name": "Shop"}, format="json", HTTP_IF_MATCH=etag)
    assert changed.status_code == HTTPStatus.OK and changed["ETag"] != etag
    for method, kwargs in [
        ("put", {"data": {"name": "x"}, "format": "json"}),
        ("patch", {"data": {}, "format": "json"}),
        ("delete", {}),
    ]:
        response = getattr(api, method)(f"{BASE}/services/web-app", HTTP_IF_MATCH=etag, **kwargs)
        _assert_precondition_failed(response, "service", changed["ETag"])
    assert api.get(f"{BASE}/services/web-app").json()["name"] == "Shop"


def test_put_with_if_match_on_a_missing_service_is_412(api):
    """If-Match names a version; a service that does not exist has none, so PUT does not create it."""
    response = api.put(f"{BASE}/services/billing", {"name": "Billing"}, format="json", HTTP_IF_MATCH='"abc"')
    assert response.status_code == HTTPStatus.PRECONDITION_FAILED
    assert response.json() == {"detail": "The service does not exist (If-Match).", "code": "precondition_failed"}


# --- Idempotency-Key --------------------------------------------------------------------


def test_retried_create_with_a_key_creates_once_and_replays_the_answer(api, service):
    """Same key, same body: the first 201 again (flagged as replayed), one schedule, one audit event."""
    first = api.post(CREATE, BODY, format="json", HTTP_IDEMPOTENCY_KEY="req-1")
    retry = api.post(CREATE, BODY, format="json", HTTP_IDEMPOTENCY_KEY="req-1")

    assert first.status_code == retry.status_code == HTTPStatus.CREATED
    assert first.json() == expected_body(
        first.json()["id"], next_run=first.json()["next_run"], description="Every hour"
    )
    assert retry.json() == first.json()
    assert ("Idempotent-Replayed" in first, retry["Idempotent-Replayed"]) == (False, "true")
    assert TaskSchedule.objects.count() == 1


def test_same_key_with_another_body_is_422(api, service):
    api.post(CREATE, BODY, format="json", HTTP_IDEMPOTENCY_KEY="req-1")
    before = database_state()
    response = api.post(CREATE, {**BODY, "cron_expression": "0 2 * * *"}, format="json", HTTP_IDEMPOTENCY_KEY="req-1")
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert response.json() == {
        "detail": "This Idempotency-Key was already used with a different request; use a new key for a new request.",
        "code": "idempotency_key_reused",
    }
    assert database_state() == before


def test_a_refused_request_is_not_remembered(api, service):
    """An error is not an answer to replay: the retry, once fixed, runs."""
    bad = api.post(CREATE, {**BODY, "cron_expression": "61 * * * *"}, format="json", HTTP_IDEMPOTENCY_KEY="req-2")
    assert bad.status_code == HTTPStatus.BAD_REQUEST
    assert IdempotencyRecord.objects.count() == 0


def test_keys_older_than_a_day_are_pruned_and_reusable(api, service):
    """After 24 h a key is forgotten: the same key acts again, and old records are deleted."""
    api.post(CREATE, BODY, format="json", HTTP_IDEMPOTENCY_KEY="old")
    IdempotencyRecord.objects.update(created_at=timezone.now() - services.IDEMPOTENCY_TTL)
    again = api.post(CREATE, {**BODY, "cron_expression": "0 5 * * *"}, format="json", HTTP_IDEMPOTENCY_KEY="old")
    assert again.status_code == HTTPStatus.CREATED
    assert "Idempotent-Replayed" not in again
    assert IdempotencyRecord.objects.count() == 1


def test_retried_run_with_a_key_sends_once(api, schedule, django_capture_on_commit_callbacks, monkeypatch):
    """Run-now with a key: the retry answers the first task id and sends nothing more."""
    sent = []
    monkeypatch.setattr(run_now.celery_app, "send_task", lambda *args, **kwargs: sent.append(kwargs["task_id"]))
    monkeypatch.setattr(health, "check_broker", lambda app: health.OK)
    with django_capture_on_commit_callbacks(execute=True):
        first = api.post(f"{BASE}/schedules/{schedule.pk}/run", HTTP_IDEMPOTENCY_KEY="run-1")
    with django_capture_on_commit_callbacks(execute=True):
        retry = api.post(f"{BASE}/schedules/{schedule.pk}/run/", HTTP_IDEMPOTENCY_KEY="run-1")
    assert first.status_code == retry.status_code == HTTPStatus.ACCEPTED
    assert retry.json() == first.json() == {"task_id": sent[0]}
    assert len(sent) == 1


def test_keys_are_per_caller(api, staff, service):
    """Two callers may pick the same key: each gets its own answer."""
    first = api.post(CREATE, BODY, format="json", HTTP_IDEMPOTENCY_KEY="k")
    other = staff.post(CREATE, {**BODY, "cron_expression": "0 4 * * *"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert (first.status_code, other.status_code) == (HTTPStatus.CREATED, HTTPStatus.CREATED)
    assert TaskSchedule.objects.count() == 2


def test_malformed_idempotency_key_is_400(api, service):
    response = api.post(CREATE, BODY, format="json", HTTP_IDEMPOTENCY_KEY="x" * 256)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json() == {
        "detail": "Idempotency-Key: 1-255 printable ASCII characters, such as a UUID.",
        "code": "invalid",
        "errors": {"Idempotency-Key": ["1-255 printable ASCII characters, such as a UUID."]},
    }
    assert TaskSchedule.objects.count() == 0
