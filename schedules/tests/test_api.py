"""The REST API over HTTP against the real database and broker, as the FastAPI stack calls it."""

import base64
import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from io import StringIO

import pytest
import redis
from celery import Celery
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.utils import load_backend
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask
from rest_framework.test import APIClient
from rest_framework_api_key.models import APIKey

from schedules import catalogue, health, services
from schedules.api.exception_handler import server_error
from schedules.models import AuditEvent, Dispatch, Service, TaskSchedule

pytestmark = pytest.mark.django_db

BASE = "/api/v1/task-scheduling"
UNREACHABLE_BROKER = "redis://127.0.0.1:1/0"


def _unreachable_celery_app() -> Celery:
    """A Celery app configured as ours but sending to a closed port.

    Celery prefers the CELERY_BROKER_URL environment variable over ``broker_url``; the
    write URL is what sending and the health check use, and it can be overridden.
    """
    app = Celery(set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.conf.broker_write_url = UNREACHABLE_BROKER
    return app


# --- helpers and fixtures -------------------------------------------------------------


def _key_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.fixture
def api_key():
    _, key = APIKey.objects.create_key(name="fastapi")
    return key


@pytest.fixture
def api(api_key):
    """A client authenticated as the FastAPI stack is: `Authorization: Token <key>`."""
    return _key_client(api_key)


@pytest.fixture
def staff_user():
    return get_user_model().objects.create_user("alice", password="unused-in-tests", is_staff=True)


@pytest.fixture
def staff(staff_user):
    client = APIClient()
    client.force_login(staff_user)
    return client


@pytest.fixture
def schedule(make_schedule):
    return make_schedule(cron_expression="*/15 * * * *")


def _send(client, method, path, *, json_body=None, raw=None, content_type="application/json"):
    if raw is not None:
        return client.generic(method, path, data=raw, content_type=content_type)
    if json_body is not None:
        return client.generic(method, path, data=json.dumps(json_body), content_type="application/json")
    return client.generic(method, path)


def _iso(moment):
    return moment.astimezone(UTC).isoformat() if moment is not None else None


def _next_slot(moment: datetime, minutes: int) -> datetime:
    """The first ``*/minutes`` cron slot strictly after ``moment``."""
    floor = moment.replace(second=0, microsecond=0) - timedelta(minutes=moment.minute % minutes)
    return floor + timedelta(minutes=minutes)


def _expected_body(schedule_id, **overrides) -> dict:
    """The schedule as the API must show it, read from the database independently of the view."""
    schedule = TaskSchedule.objects.select_related("periodic_task__crontab", "periodic_task__interval").get(
        pk=schedule_id
    )
    periodic_task = schedule.periodic_task
    crontab, interval = periodic_task.crontab, periodic_task.interval
    body = {
        "id": str(schedule.pk),
        "service_id": schedule.service_id,
        "task_name": schedule.task_name,
        "task_path": catalogue.get_task(schedule.task_name).task,
        "schedule_type": "cron" if crontab else "interval",
        "cron_expression": (
            f"{crontab.minute} {crontab.hour} {crontab.day_of_month} {crontab.month_of_year} {crontab.day_of_week}"
            if crontab
            else None
        ),
        "interval_seconds": interval.every if interval else None,
        "timezone": str(crontab.timezone) if crontab else "UTC",
        "enabled": periodic_task.enabled,
        "last_run": _iso(periodic_task.last_run_at),
        "total_run_count": periodic_task.total_run_count,
        "created_at": _iso(schedule.created_at),
        "updated_at": _iso(schedule.updated_at),
    }
    body.update(overrides)
    return body


def _database_state() -> dict:
    """Everything a request could write, to prove a refused one wrote nothing."""
    return {
        "services": list(Service.objects.order_by("id").values_list("id", "name", "description", "updated_at")),
        "schedules": list(
            TaskSchedule.objects.order_by("id").values_list("id", "task_name", "periodic_task_id", "updated_at")
        ),
        "periodic_tasks": list(
            PeriodicTask.objects.order_by("id").values_list(
                "id", "name", "task", "args", "enabled", "crontab_id", "interval_id", "last_run_at", "date_changed"
            )
        ),
        "crontabs": CrontabSchedule.objects.count(),
        "intervals": IntervalSchedule.objects.count(),
        "audit_events": AuditEvent.objects.count(),
        "api_keys": list(APIKey.objects.order_by("id").values_list("id", "revoked")),
    }


# --- the seed's callers -------------------------------------------------------------------


def test_seed_usage_replayed_without_trailing_slashes_works(api, service):
    """The seed's curl examples (create, partial PUT) plus its toggle and delete, as its UI sends them."""
    created = api.post(
        f"{BASE}/services/web-app/schedules",
        data=json.dumps(
            {
                "task_name": "fetch_logs",
                "schedule_type": "cron",
                "cron_expression": "*/15 * * * *",
                "enabled": True,
            }
        ),
        content_type="application/json",
    )
    assert created.status_code == HTTPStatus.CREATED
    schedule_id = created.json()["id"]
    changed_at = PeriodicTask.objects.get(luffy_schedule__pk=schedule_id).date_changed
    assert created.json() == _expected_body(
        schedule_id,
        service_id="web-app",
        task_name="fetch_logs",
        task_path="src.services.tasks.fetch_and_process_logs",
        schedule_type="cron",
        cron_expression="*/15 * * * *",
        interval_seconds=None,
        timezone="UTC",
        enabled=True,
        last_run=None,
        next_run=_iso(_next_slot(changed_at, 15)),
        description="Every 15 minutes",
        total_run_count=0,
    )

    updated = api.put(
        f"{BASE}/schedules/{schedule_id}",
        data=json.dumps({"cron_expression": "*/30 * * * *"}),
        content_type="application/json",
    )
    assert updated.status_code == HTTPStatus.OK
    changed_at = PeriodicTask.objects.get(luffy_schedule__pk=schedule_id).date_changed
    assert updated.json() == _expected_body(
        schedule_id,
        task_name="fetch_logs",
        cron_expression="*/30 * * * *",
        enabled=True,
        next_run=_iso(_next_slot(changed_at, 30)),
        description="Every 30 minutes",
    )

    toggled = api.post(f"{BASE}/schedules/{schedule_id}/toggle?enabled=false")
    assert toggled.status_code == HTTPStatus.OK
    assert toggled.json() == {
        "message": "Schedule disabled successfully",
        "schedule": _expected_body(
            schedule_id,
            enabled=False,
            next_run=None,
            cron_expression="*/30 * * * *",
            description="Every 30 minutes",
        ),
    }
    assert PeriodicTask.objects.get(luffy_schedule__pk=schedule_id).enabled is False

    deleted = api.delete(f"{BASE}/schedules/{schedule_id}")
    assert deleted.status_code == HTTPStatus.OK
    assert deleted.json() == {"message": "Schedule deleted successfully"}
    assert not TaskSchedule.objects.exists()
    assert not PeriodicTask.objects.exists()


PATHS = [
    ("GET", "/services"),
    ("POST", "/services"),
    ("GET", "/services/web-app"),
    ("PUT", "/services/web-app"),
    ("PATCH", "/services/web-app"),
    ("GET", "/services/web-app/schedules"),
    ("POST", "/services/web-app/schedules"),
    ("GET", "/schedules"),
    ("GET", "/schedules/{id}"),
    ("PUT", "/schedules/{id}"),
    ("PATCH", "/schedules/{id}"),
    ("POST", "/schedules/{id}/toggle"),
    ("POST", "/schedules/{id}/run"),
    ("GET", "/schedules/{id}/history"),
    ("GET", "/tasks"),
    ("GET", "/cron/preview"),
    ("GET", "/health"),
    ("DELETE", "/schedules/{id}"),
    ("DELETE", "/services/web-app"),
]


@pytest.mark.parametrize("slash", ["", "/"], ids=["no-slash", "slash"])
@pytest.mark.parametrize(("method", "path"), PATHS, ids=[f"{m} {p}" for m, p in PATHS])
def test_every_path_answers_with_and_without_trailing_slash(api, schedule, method, path, slash):
    """No path redirects or 404s for want of a slash; POST bodies reach the view."""
    response = _send(api, method, BASE + path.format(id=schedule.pk) + slash, json_body={})
    assert response.status_code not in (
        HTTPStatus.MOVED_PERMANENTLY,
        HTTPStatus.PERMANENT_REDIRECT,
        HTTPStatus.NOT_FOUND,
        HTTPStatus.METHOD_NOT_ALLOWED,
    )
    assert response["Content-Type"] == "application/json"


# --- the representation -----------------------------------------------------------------


def test_interval_schedule_reads_with_next_run_after_the_change(api, make_schedule):
    """An interval schedule's next run is its last change plus the interval (no immediate run)."""
    schedule = make_schedule(task_name="index_code", schedule_type="interval", interval_seconds=900)
    response = api.get(f"{BASE}/schedules/{schedule.pk}")
    changed_at = PeriodicTask.objects.get(pk=schedule.periodic_task_id).date_changed
    assert response.status_code == HTTPStatus.OK
    assert response.json() == _expected_body(
        schedule.pk,
        task_name="index_code",
        task_path="src.services.tasks.index_code_repository",
        schedule_type="interval",
        cron_expression=None,
        interval_seconds=900,
        timezone="UTC",
        next_run=_iso(changed_at + timedelta(seconds=900)),
        description="Every 15 minutes",
    )


def test_last_run_and_run_count_come_from_beat(api, schedule):
    """What beat writes back (last_run_at, total_run_count) is what the API shows."""
    ran_at = datetime(2026, 1, 31, 9, 15, tzinfo=UTC)
    PeriodicTask.objects.filter(pk=schedule.periodic_task_id).update(last_run_at=ran_at, total_run_count=7)
    body = api.get(f"{BASE}/schedules/{schedule.pk}").json()
    assert (body["last_run"], body["total_run_count"]) == ("2026-01-31T09:15:00+00:00", 7)
    assert body["next_run"] == "2026-01-31T09:30:00+00:00"


def test_cron_macro_is_stored_as_five_fields_in_its_timezone(api, service):
    """@daily is stored as `0 0 * * *`; the next run is local midnight, shown in UTC."""
    response = api.post(
        f"{BASE}/services/web-app/schedules",
        {"task_name": "generate_rca", "cron_expression": "@daily", "timezone": "Asia/Tokyo"},
        format="json",
    )
    assert response.status_code == HTTPStatus.CREATED
    body = response.json()
    assert (body["cron_expression"], body["timezone"], body["description"]) == ("0 0 * * *", "Asia/Tokyo", "At 00:00")
    next_run = datetime.fromisoformat(body["next_run"])
    assert next_run.utcoffset() == timedelta(0)
    assert (next_run.hour, next_run.minute) == (15, 0)  # 00:00 in Tokyo (UTC+9)


def test_put_switching_type_clears_the_other_field(api, schedule):
    """cron -> interval: cron_expression becomes null; the beat entry moves to an interval."""
    response = api.put(
        f"{BASE}/schedules/{schedule.pk}", {"schedule_type": "interval", "interval_seconds": 3600}, format="json"
    )
    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert (body["schedule_type"], body["cron_expression"], body["interval_seconds"]) == ("interval", None, 3600)
    periodic_task = PeriodicTask.objects.get(pk=schedule.periodic_task_id)
    assert (periodic_task.crontab_id, periodic_task.interval.every) == (None, 3600)


def test_read_only_fields_sent_back_are_ignored(api, schedule):
    """A caller may PUT back the body it read, read-only fields included, with one change."""
    body = api.get(f"{BASE}/schedules/{schedule.pk}").json()
    sent = {
        **body,
        "id": str(uuid.uuid4()),
        "service_id": "other",
        "task_path": "os.system",
        "next_run": None,
        "total_run_count": 99,
        "enabled": False,
    }
    response = api.put(f"{BASE}/schedules/{schedule.pk}", sent, format="json")
    assert response.status_code == HTTPStatus.OK
    assert response.json() == _expected_body(schedule.pk, enabled=False, next_run=None, description="Every 15 minutes")
    periodic_task = PeriodicTask.objects.get(pk=schedule.periodic_task_id)
    assert (periodic_task.task, periodic_task.args) == ("src.services.tasks.fetch_and_process_logs", '["web-app"]')


@pytest.mark.parametrize(
    ("query", "body", "enabled"),
    [
        ("?enabled=false", None, False),
        ("?enabled=False", None, False),
        ("", {"enabled": False}, False),
        ("?enabled=false", "null", False),
        ("?enabled=false", {"enabled": False}, False),
        ("?enabled=true", None, True),
    ],
)
def test_toggle_takes_enabled_from_query_or_body(api, schedule, query, body, enabled):
    """The seed's ?enabled= and a JSON body both work; the message says what happened."""
    path = f"{BASE}/schedules/{schedule.pk}/toggle{query}"
    response = _send(api, "POST", path, raw=b"null") if body == "null" else _send(api, "POST", path, json_body=body)
    assert response.status_code == HTTPStatus.OK
    assert response.json()["message"] == f"Schedule {'enabled' if enabled else 'disabled'} successfully"
    assert response.json()["schedule"]["enabled"] is enabled
    assert PeriodicTask.objects.get(pk=schedule.periodic_task_id).enabled is enabled


def test_unknown_task_name_error_lists_the_valid_ones(api, service):
    """The full error body: detail for people, errors per field, nothing written."""
    response = api.post(
        f"{BASE}/services/web-app/schedules", {"task_name": "deploy", "cron_expression": "* * * * *"}, format="json"
    )
    message = "'deploy' is not a catalogue task; choose one of fetch_logs, generate_rca, index_code."
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json() == {"detail": f"task_name: {message}", "code": "invalid", "errors": {"task_name": [message]}}


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("/services/nope/schedules", "Service not found"),
        ("/services/nope", "Service not found"),
        ("/schedules/not-a-uuid", "Schedule not found"),
        (f"/schedules/{uuid.UUID(int=1)}", "Schedule not found"),
        (f"/schedules/{uuid.UUID(int=1)}/history", "Schedule not found"),
    ],
)
def test_unknown_ids_answer_the_seed_404_body(api, path, detail):
    """The seed's 404 bodies, with the error code added."""
    response = api.get(BASE + path)
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response.json() == {"detail": detail, "code": "not_found"}


@pytest.mark.parametrize(
    ("raw", "got"), [(b"[]", "an array"), (b'"x"', "a string"), (b"7", "a number"), (b"null", "null")]
)
def test_body_that_is_not_an_object_is_refused_by_its_type(api, service, raw, got):
    """A JSON body of the wrong type says what it got."""
    response = _send(api, "POST", f"{BASE}/services/web-app/schedules", raw=raw)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    message = f"Expected a JSON object, got {got}."
    assert response.json() == {"detail": message, "code": "invalid", "errors": {"non_field_errors": [message]}}


def test_unknown_api_path_answers_json_404(api):
    """Even a path no route matches answers JSON with a detail, not an HTML page."""
    response = api.get(f"{BASE}/nothing-here")
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


def test_server_error_under_the_api_answers_json(rf):
    """An unexpected error (logged by Django) still gives the front end a `detail` to show."""
    response = server_error(rf.get(f"{BASE}/schedules"))
    assert response.status_code == HTTPStatus.INTERNAL_SERVER_ERROR
    assert json.loads(response.content) == {"detail": "Server error.", "code": "server_error"}


# --- bad requests: refused, explained, nothing written ------------------------------------

CREATE = ("POST", "/services/web-app/schedules")
UPDATE = ("PUT", "/schedules/{schedule}")


def _create(body, status=HTTPStatus.BAD_REQUEST, code="invalid", fields=None, **kwargs):
    return (*CREATE, {"json_body": {"task_name": "fetch_logs", **body}, **kwargs}, status, code, fields)


def _update(body, fields, method="PUT"):
    return (method, UPDATE[1], {"json_body": body}, HTTPStatus.BAD_REQUEST, "invalid", fields)


def _raw(raw, content_type="application/json", status=HTTPStatus.BAD_REQUEST, code="parse_error", fields=None):
    return (*CREATE, {"raw": raw, "content_type": content_type}, status, code, fields)


BAD_REQUESTS = {
    # cron
    "cron out of range": _create({"cron_expression": "61 * * * *"}, fields={"cron_expression"}),
    "cron step zero": _create({"cron_expression": "*/0 * * * *"}, fields={"cron_expression"}),
    "cron four fields": _create({"cron_expression": "* * * *"}, fields={"cron_expression"}),
    "cron six fields": _create({"cron_expression": "0 * * * * *"}, fields={"cron_expression"}),
    "cron junk": _create({"cron_expression": "every monday"}, fields={"cron_expression"}),
    "cron never fires": _create({"cron_expression": "0 0 30 2 *"}, fields={"cron_expression"}),
    "cron @reboot": _create({"cron_expression": "@reboot"}, fields={"cron_expression"}),
    "cron missing": _create({"schedule_type": "cron"}, fields={"cron_expression"}),
    "cron not a string": _create({"cron_expression": 15}, fields={"cron_expression"}),
    "cron with interval set": _create(
        {"cron_expression": "* * * * *", "interval_seconds": 900}, fields={"interval_seconds"}
    ),
    "cron too long": _create({"cron_expression": "1," * 100 + "1 * * * *"}, fields={"cron_expression"}),
    # interval
    "interval missing": _create({"schedule_type": "interval"}, fields={"interval_seconds"}),
    "interval true": _create({"schedule_type": "interval", "interval_seconds": True}, fields={"interval_seconds"}),
    "interval 1.5": _create({"schedule_type": "interval", "interval_seconds": 1.5}, fields={"interval_seconds"}),
    "interval string": _create({"schedule_type": "interval", "interval_seconds": "900"}, fields={"interval_seconds"}),
    "interval below bounds": _create(
        {"schedule_type": "interval", "interval_seconds": 59}, fields={"interval_seconds"}
    ),
    "interval above bounds": _create(
        {"schedule_type": "interval", "interval_seconds": 86401}, fields={"interval_seconds"}
    ),
    "interval huge": _create({"schedule_type": "interval", "interval_seconds": 10**30}, fields={"interval_seconds"}),
    "interval with cron set": _create(
        {"schedule_type": "interval", "interval_seconds": 900, "cron_expression": "* * * * *"},
        fields={"cron_expression"},
    ),
    "interval not in UTC": _create(
        {"schedule_type": "interval", "interval_seconds": 900, "timezone": "Europe/Paris"}, fields={"timezone"}
    ),
    # types and fields
    "task unknown": _create({"task_name": "deploy", "cron_expression": "* * * * *"}, fields={"task_name"}),
    "task missing": (
        *CREATE,
        {"json_body": {"cron_expression": "* * * * *"}},
        HTTPStatus.BAD_REQUEST,
        "invalid",
        {"task_name"},
    ),
    "task not a string": _create({"task_name": ["fetch_logs"], "cron_expression": "* * * * *"}, fields={"task_name"}),
    "type unknown": _create({"schedule_type": "weekly", "cron_expression": "* * * * *"}, fields={"schedule_type"}),
    "timezone unknown": _create({"cron_expression": "* * * * *", "timezone": "Mars/Olympus"}, fields={"timezone"}),
    "timezone not a string": _create({"cron_expression": "* * * * *", "timezone": 1}, fields={"timezone"}),
    "enabled string": _create({"cron_expression": "* * * * *", "enabled": "yes"}, fields={"enabled"}),
    "enabled integer": _create({"cron_expression": "* * * * *", "enabled": 1}, fields={"enabled"}),
    "enabled null": _create({"cron_expression": "* * * * *", "enabled": None}, fields={"enabled"}),
    "unknown field": _create({"cron_expression": "* * * * *", "priority": 1}, fields={"priority"}),
    "task path is not a request field": _create(
        {"cron_expression": "* * * * *", "args": ["other-service"]}, fields={"args"}
    ),
    "NUL character": _create({"cron_expression": "* * * * *\x00"}, fields={"cron_expression"}),
    # bodies
    "malformed JSON": _raw(b'{"task_name": '),
    "NaN is not JSON": _raw(b'{"task_name": "fetch_logs", "interval_seconds": NaN}'),
    "not UTF-8": _raw(b'{"task_name": "\xff"}'),
    "deeply nested": _raw(b"[" * 30000 + b"]" * 30000),
    "array body": _raw(b"[]", code="invalid", fields={"non_field_errors"}),
    "string body": _raw(b'"fetch_logs"', code="invalid", fields={"non_field_errors"}),
    "null body": _raw(b"null", code="invalid", fields={"non_field_errors"}),
    "text/plain": _raw(
        b"task_name=fetch_logs", "text/plain", HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"
    ),
    "form-encoded": _raw(
        b"task_name=fetch_logs",
        "application/x-www-form-urlencoded",
        HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    ),
    "oversized": _raw(
        b'{"task_name": "' + b"x" * 70_000 + b'"}', status=HTTPStatus.REQUEST_ENTITY_TOO_LARGE, code="payload_too_large"
    ),
    # updates
    "update bad cron": _update({"cron_expression": "* 24 * * *"}, {"cron_expression"}),
    "update interval on a cron schedule": _update({"interval_seconds": 900}, {"interval_seconds"}),
    "update to interval without seconds": _update({"schedule_type": "interval"}, {"interval_seconds"}, "PATCH"),
    "update null cron": _update({"cron_expression": None}, {"cron_expression"}, "PATCH"),
    "update unknown field": _update({"cron": "* * * * *"}, {"cron"}),
    "update enabled string": _update({"enabled": "false"}, {"enabled"}),
    "toggle not a boolean": (
        "POST",
        "/schedules/{schedule}/toggle?enabled=maybe",
        {},
        HTTPStatus.BAD_REQUEST,
        "invalid",
        {"enabled"},
    ),
    "toggle without enabled": (
        "POST",
        "/schedules/{schedule}/toggle",
        {},
        HTTPStatus.BAD_REQUEST,
        "invalid",
        {"enabled"},
    ),
    "toggle body string": (
        "POST",
        "/schedules/{schedule}/toggle",
        {"json_body": {"enabled": "false"}},
        HTTPStatus.BAD_REQUEST,
        "invalid",
        {"enabled"},
    ),
    "toggle query and body disagree": (
        "POST",
        "/schedules/{schedule}/toggle?enabled=true",
        {"json_body": {"enabled": False}},
        HTTPStatus.BAD_REQUEST,
        "invalid",
        {"enabled"},
    ),
    "duplicate schedule": _create({"cron_expression": "*/15 * * * *"}, HTTPStatus.CONFLICT, "conflict"),
    "update into a duplicate": (
        "PUT",
        "/schedules/{other}",
        {"json_body": {"cron_expression": "*/15 * * * *"}},
        HTTPStatus.CONFLICT,
        "conflict",
        None,
    ),
    # ids
    "schedule id not a UUID": (
        "PUT",
        "/schedules/42",
        {"json_body": {"enabled": False}},
        HTTPStatus.NOT_FOUND,
        "not_found",
        None,
    ),
    "schedule missing: update": (
        "PATCH",
        "/schedules/{missing}",
        {"json_body": {"enabled": False}},
        HTTPStatus.NOT_FOUND,
        "not_found",
        None,
    ),
    "schedule missing: delete": ("DELETE", "/schedules/{missing}", {}, HTTPStatus.NOT_FOUND, "not_found", None),
    "schedule missing: toggle": (
        "POST",
        "/schedules/{missing}/toggle?enabled=false",
        {},
        HTTPStatus.NOT_FOUND,
        "not_found",
        None,
    ),
    "schedule missing: run": ("POST", "/schedules/{missing}/run", {}, HTTPStatus.NOT_FOUND, "not_found", None),
    "service missing: create schedule": (
        "POST",
        "/services/nope/schedules",
        {"json_body": {"task_name": "fetch_logs", "cron_expression": "* * * * *"}},
        HTTPStatus.NOT_FOUND,
        "not_found",
        None,
    ),
    "service missing: delete": ("DELETE", "/services/nope", {}, HTTPStatus.NOT_FOUND, "not_found", None),
    "service id with a NUL byte": ("GET", "/services/a%00b/schedules", {}, HTTPStatus.NOT_FOUND, "not_found", None),
    "method not allowed": (
        "DELETE",
        "/services/web-app/schedules",
        {},
        HTTPStatus.METHOD_NOT_ALLOWED,
        "method_not_allowed",
        None,
    ),
    # services
    "service id not a slug": (
        "POST",
        "/services",
        {"json_body": {"id": "Web App", "name": "x"}},
        HTTPStatus.BAD_REQUEST,
        "invalid",
        {"id"},
    ),
    "service id not a string": (
        "POST",
        "/services",
        {"json_body": {"id": 5, "name": "x"}},
        HTTPStatus.BAD_REQUEST,
        "invalid",
        {"id"},
    ),
    "service name missing": (
        "POST",
        "/services",
        {"json_body": {"id": "billing"}},
        HTTPStatus.BAD_REQUEST,
        "invalid",
        {"name"},
    ),
    "service exists": (
        "POST",
        "/services",
        {"json_body": {"id": "web-app", "name": "x"}},
        HTTPStatus.CONFLICT,
        "conflict",
        None,
    ),
    "service PUT with a bad id": (
        "PUT",
        "/services/Web%20App",
        {"json_body": {"name": "x"}},
        HTTPStatus.BAD_REQUEST,
        "invalid",
        {"id"},
    ),
    "service PUT with a NUL byte": (
        "PUT",
        "/services/a%00b",
        {"json_body": {"name": "x"}},
        HTTPStatus.BAD_REQUEST,
        "invalid",
        {"id"},
    ),
    "service name blank": (
        "PATCH",
        "/services/web-app",
        {"json_body": {"name": ""}},
        HTTPStatus.BAD_REQUEST,
        "invalid",
        {"name"},
    ),
    "service name too long": (
        "PUT",
        "/services/web-app",
        {"json_body": {"name": "x" * 201}},
        HTTPStatus.BAD_REQUEST,
        "invalid",
        {"name"},
    ),
    "service name NUL": (
        "PATCH",
        "/services/web-app",
        {"json_body": {"name": "a\x00b"}},
        HTTPStatus.BAD_REQUEST,
        "invalid",
        {"name"},
    ),
    # query strings
    "filter enabled not a boolean": (
        "GET",
        "/schedules?enabled=yes",
        {},
        HTTPStatus.BAD_REQUEST,
        "invalid",
        {"enabled"},
    ),
    "filter unknown service": ("GET", "/schedules?service=nope", {}, HTTPStatus.BAD_REQUEST, "invalid", {"service"}),
    "filter service with a NUL byte": (
        "GET",
        "/schedules?service=a%00b",
        {},
        HTTPStatus.BAD_REQUEST,
        "invalid",
        {"service"},
    ),
    "filter unknown task": ("GET", "/schedules?task_name=deploy", {}, HTTPStatus.BAD_REQUEST, "invalid", {"task_name"}),
    "page out of range": ("GET", "/schedules?page=9", {}, HTTPStatus.NOT_FOUND, "not_found", None),
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
    # authentication
    "no credentials": (*CREATE, {"auth": None}, HTTPStatus.UNAUTHORIZED, "not_authenticated", None),
    "wrong key": (*CREATE, {"auth": "Token abcdefgh.wrong"}, HTTPStatus.UNAUTHORIZED, "authentication_failed", None),
    "key with a NUL byte": (
        *CREATE,
        {"auth": "Token abc\x00def.ghi"},
        HTTPStatus.UNAUTHORIZED,
        "authentication_failed",
        None,
    ),
    "malformed header": (*CREATE, {"auth": "Token"}, HTTPStatus.UNAUTHORIZED, "authentication_failed", None),
    "other scheme": (*CREATE, {"auth": "Bearer abc"}, HTTPStatus.UNAUTHORIZED, "not_authenticated", None),
    "revoked key": (*CREATE, {"auth": "revoked"}, HTTPStatus.UNAUTHORIZED, "authentication_failed", None),
    "non-staff session": (*CREATE, {"auth": "non-staff"}, HTTPStatus.FORBIDDEN, "permission_denied", None),
    "anonymous delete": (
        "DELETE",
        "/schedules/{schedule}",
        {"auth": None},
        HTTPStatus.UNAUTHORIZED,
        "not_authenticated",
        None,
    ),
}


def _client_for(auth, default):
    if auth == "default":
        return default
    client = APIClient()
    if auth == "revoked":
        api_key, key = APIKey.objects.create_key(name="old")
        api_key.revoked = True
        api_key.save()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    elif auth == "non-staff":
        client.force_login(get_user_model().objects.create_user("bob", password="unused-in-tests"))
    elif auth is not None:
        client.credentials(HTTP_AUTHORIZATION=auth)
    return client


@pytest.mark.parametrize(
    ("method", "path", "request_kwargs", "status", "code", "error_fields"),
    list(BAD_REQUESTS.values()),
    ids=list(BAD_REQUESTS),
)
def test_bad_request_is_refused_with_a_clear_body_and_writes_nothing(
    api, make_schedule, method, path, request_kwargs, status, code, error_fields
):
    """Each bad request gets its 4xx, `detail` (+ `errors` per field for validation), and no write."""
    request_kwargs = dict(request_kwargs)
    client = _client_for(request_kwargs.pop("auth", "default"), api)
    existing = make_schedule(cron_expression="*/15 * * * *")
    other = make_schedule(cron_expression="0 * * * *")
    path = BASE + path.format(schedule=existing.pk, other=other.pk, missing=uuid.UUID(int=1))
    before = _database_state()

    response = _send(client, method, path, **request_kwargs)

    assert response.status_code == status, response.content
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"].strip()
    assert body["code"] == code
    if error_fields is None:
        assert set(body) == {"detail", "code"}
    else:
        assert set(body) == {"detail", "code", "errors"}
        assert set(body["errors"]) == error_fields
        assert all(isinstance(message, str) and message for messages in body["errors"].values() for message in messages)
        for field in error_fields - {"non_field_errors"}:
            assert field in body["detail"]
    assert _database_state() == before


# --- concurrency ----------------------------------------------------------------------------


def _in_threads(count, work):
    """Run ``work(i)`` in ``count`` threads started together; return results in order."""
    barrier = threading.Barrier(count)
    results = [None] * count

    def run(index):
        try:
            barrier.wait()
            results[index] = work(index)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_creates_give_one_201_and_409s(api_key, service):
    """Six callers create the same schedule at once: exactly one wins, the rest get 409."""
    body = json.dumps({"task_name": "fetch_logs", "cron_expression": "*/5 * * * *"})

    def create(_):
        response = _key_client(api_key).post(
            f"{BASE}/services/web-app/schedules", data=body, content_type="application/json"
        )
        return response.status_code

    statuses = _in_threads(6, create)
    assert sorted(statuses) == [HTTPStatus.CREATED] + [HTTPStatus.CONFLICT] * 5
    assert TaskSchedule.objects.count() == PeriodicTask.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_updates_leave_row_and_beat_entry_agreeing(api_key, schedule):
    """Updates racing on one schedule end with our row, its PeriodicTask and the audit in step."""
    tasks = ["fetch_logs", "generate_rca", "index_code"]

    def update(index):
        body = json.dumps({"task_name": tasks[index % 3], "cron_expression": f"{index} * * * *"})
        return (
            _key_client(api_key)
            .put(f"{BASE}/schedules/{schedule.pk}", data=body, content_type="application/json")
            .status_code
        )

    assert _in_threads(6, update) == [HTTPStatus.OK] * 6
    current = TaskSchedule.objects.select_related("periodic_task__crontab").get(pk=schedule.pk)
    last = AuditEvent.objects.filter(schedule_id=schedule.pk).order_by("-at", "-id").first()
    assert current.periodic_task.task == catalogue.get_task(current.task_name).task
    assert last.after["task_name"] == current.task_name
    assert last.after["cron_expression"] == f"{current.periodic_task.crontab.minute} * * * *"
    assert AuditEvent.objects.filter(schedule_id=schedule.pk, action="update").count() == 6


@pytest.mark.django_db(transaction=True)
def test_concurrent_deletes_give_one_200_and_404s(api_key, schedule):
    """Racing deletes of one schedule: one succeeds, the others find it gone (never a 500)."""

    def delete(_):
        return _key_client(api_key).delete(f"{BASE}/schedules/{schedule.pk}").status_code

    assert sorted(_in_threads(4, delete)) == [HTTPStatus.OK] + [HTTPStatus.NOT_FOUND] * 3
    assert not TaskSchedule.objects.exists() and not PeriodicTask.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_service_puts_create_it_once(api_key):
    """The FastAPI stack's idempotent registration: racing PUTs make one service, one 201."""
    body = json.dumps({"name": "Billing API"})

    def put(_):
        return (
            _key_client(api_key)
            .put(f"{BASE}/services/billing-api", data=body, content_type="application/json")
            .status_code
        )

    statuses = _in_threads(4, put)
    assert sorted(statuses) == [HTTPStatus.OK] * 3 + [HTTPStatus.CREATED]
    assert Service.objects.filter(pk="billing-api").count() == 1


# --- lists: constant queries, pagination, filters -------------------------------------------


@pytest.mark.parametrize(
    ("path", "queries"),
    [
        # API key, service, its schedules (with their beat rows).
        ("/services/web-app/schedules", 3),
        # API key, count, page.
        ("/schedules", 3),
        # API key, service filter, count, page.
        ("/schedules?service=web-app&enabled=true&task_name=fetch_logs", 4),
        # API key, count, page (with schedule counts).
        ("/services", 3),
    ],
)
def test_list_runs_in_a_constant_number_of_queries(api, make_schedule, path, queries, django_assert_num_queries):
    """1 schedule or 50: the same queries, so a page never costs one query per row."""
    make_schedule(cron_expression="0 * * * *")
    with django_assert_num_queries(queries):
        assert api.get(BASE + path).status_code == HTTPStatus.OK
    for minute in range(1, 50):
        make_schedule(cron_expression=f"{minute} * * * *")
    with django_assert_num_queries(queries):
        response = api.get(BASE + path)
    body = response.json()
    rows = body if isinstance(body, list) else body["results"]
    assert len(rows) == (1 if path == "/services" else 50)


def test_history_runs_in_a_constant_number_of_queries(api, actor, schedule, django_assert_num_queries):
    """History of 1 event or 50: the same queries."""
    path = f"{BASE}/schedules/{schedule.pk}/history"
    with django_assert_num_queries(4):  # API key, exists, count, page
        assert api.get(path).json()["count"] == 1
    for index in range(49):
        services.schedule_set_enabled(actor=actor, schedule=schedule, enabled=index % 2 == 1)
    with django_assert_num_queries(4):
        assert len(api.get(path).json()["results"]) == 50


def test_schedules_list_filters_and_paginates(api, make_service, make_schedule):
    """Filters narrow the list; pages follow DRF's page-number shape."""
    search = make_service("search", "Search")
    make_schedule(cron_expression="0 * * * *")
    make_schedule(task_name="index_code", cron_expression="0 3 * * *", enabled=False)
    wanted = make_schedule(target=search, cron_expression="0 * * * *")
    response = api.get(f"{BASE}/schedules?service=search")
    assert response.json() == {
        "count": 1,
        "next": None,
        "previous": None,
        "results": [
            _expected_body(wanted.pk, next_run=response.json()["results"][0]["next_run"], description="Every hour")
        ],
    }
    assert [row["task_name"] for row in api.get(f"{BASE}/schedules?enabled=false").json()["results"]] == ["index_code"]
    first = api.get(f"{BASE}/schedules?page_size=2").json()
    assert (first["count"], len(first["results"])) == (3, 2)
    assert first["next"] == f"http://testserver{BASE}/schedules?page=2&page_size=2"


# --- run now, history -----------------------------------------------------------------------


def _queued_messages(client, queue):
    return [json.loads(raw) for raw in client.lrange(queue, 0, -1)]


@pytest.mark.skipif(
    not settings.CELERY_BROKER_URL.startswith("redis://"),
    reason="needs CELERY_BROKER_URL pointing at Redis (make test sets it)",
)
@pytest.mark.django_db(transaction=True)
def test_run_sends_the_task_now_with_the_service_id(api, schedule):
    """202 with the task id; the message is on the catalogue's queue with args [service_id]."""
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete("default")
    try:
        response = api.post(f"{BASE}/schedules/{schedule.pk}/run")
        assert response.status_code == HTTPStatus.ACCEPTED
        task_id = response.json()["task_id"]
        assert response.json() == {"task_id": task_id}
        [message] = _queued_messages(broker, "default")
    finally:
        broker.delete("default")
    assert message["headers"]["id"] == task_id
    assert message["headers"]["task"] == "src.services.tasks.fetch_and_process_logs"
    args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    assert (args, kwargs) == (["web-app"], {})
    event = AuditEvent.objects.get(schedule_id=schedule.pk, action="run_now")
    assert (event.actor, event.after) == ("api-key:fastapi", {"task_id": task_id})


BROKER_DOWN = {
    "detail": "The task broker is unreachable; nothing was sent. Try again later.",
    "code": "broker_unavailable",
}


def test_run_with_the_broker_down_answers_503_and_records_nothing(api, schedule, monkeypatch):
    """A broker known to be down: 503 with a detail, and no run-now in the audit trail."""
    monkeypatch.setattr(services, "celery_app", _unreachable_celery_app())
    before = _database_state()
    response = api.post(f"{BASE}/schedules/{schedule.pk}/run")
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json() == BROKER_DOWN
    assert _database_state() == before


@pytest.mark.django_db(transaction=True)
def test_run_when_the_send_itself_fails_answers_503(api, schedule, monkeypatch):
    """The broker lost between the check and the send (after commit): a 503, not a 500, and
    the audit event says nothing went out."""
    monkeypatch.setattr(services, "celery_app", _unreachable_celery_app())
    monkeypatch.setattr(health, "check_broker", lambda app: health.OK)
    response = api.post(f"{BASE}/schedules/{schedule.pk}/run")
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json() == BROKER_DOWN
    assert AuditEvent.objects.get(action="run_now").after["sent"] is False


def test_history_lists_changes_newest_first_with_who(api, staff, schedule, staff_user):
    """Who (API key or user), what, before and after, newest first; it outlives the schedule."""
    api.put(f"{BASE}/schedules/{schedule.pk}", {"cron_expression": "0 * * * *"}, format="json")
    staff.post(f"{BASE}/schedules/{schedule.pk}/toggle?enabled=false")
    api.delete(f"{BASE}/schedules/{schedule.pk}")

    response = api.get(f"{BASE}/schedules/{schedule.pk}/history")

    assert response.status_code == HTTPStatus.OK
    events = response.json()["results"]
    at = [event.pop("at") for event in events]
    assert at == sorted(at, reverse=True)
    timing = {"task_name": "fetch_logs", "schedule_type": "cron", "interval_seconds": None, "timezone": "UTC"}
    hourly_off = {**timing, "cron_expression": "0 * * * *", "enabled": False}
    assert events == [
        {"actor": "api-key:fastapi", "action": "delete", "before": hourly_off, "after": None},
        {"actor": "user:alice", "action": "toggle", "before": {**hourly_off, "enabled": True}, "after": hourly_off},
        {
            "actor": "api-key:fastapi",
            "action": "update",
            "before": {**timing, "cron_expression": "*/15 * * * *", "enabled": True},
            "after": {**hourly_off, "enabled": True},
        },
        {
            "actor": "system:tests",
            "action": "create",
            "before": None,
            "after": {**timing, "cron_expression": "*/15 * * * *", "enabled": True},
        },
    ]


# --- services ---------------------------------------------------------------------------------


def test_service_put_creates_then_updates_idempotently(api):
    """PUT registers a missing service (201), then replaces its fields (200)."""
    first = api.put(f"{BASE}/services/billing-api", {"name": "Billing"}, format="json")
    assert first.status_code == HTTPStatus.CREATED
    service = Service.objects.get(pk="billing-api")
    assert first.json() == {
        "id": "billing-api",
        "name": "Billing",
        "description": "",
        "schedule_count": 0,
        "created_at": _iso(service.created_at),
        "updated_at": _iso(service.updated_at),
    }
    again = api.put(f"{BASE}/services/billing-api", {"name": "Billing API", "description": "Invoices"}, format="json")
    assert again.status_code == HTTPStatus.OK
    assert (again.json()["name"], again.json()["description"]) == ("Billing API", "Invoices")
    assert Service.objects.count() == 1


def test_service_create_list_patch_and_delete(api, make_schedule):
    """POST creates; the list counts schedules; PATCH changes one field; DELETE takes the schedules too."""
    created = api.post(f"{BASE}/services", {"id": "search", "name": "Search"}, format="json")
    assert created.status_code == HTTPStatus.CREATED
    make_schedule(target=Service.objects.get(pk="search"))
    listed = api.get(f"{BASE}/services").json()
    assert [(row["id"], row["schedule_count"]) for row in listed["results"]] == [("search", 1), ("web-app", 0)]
    patched = api.patch(f"{BASE}/services/search", {"description": "Full-text search"}, format="json")
    assert (patched.json()["name"], patched.json()["description"]) == ("Search", "Full-text search")
    deleted = api.delete(f"{BASE}/services/search")
    assert deleted.json() == {"message": "Service deleted successfully"}
    assert not TaskSchedule.objects.exists() and not PeriodicTask.objects.exists()


# --- catalogue, cron preview, health ------------------------------------------------------------


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
        }
        for task in (catalogue.get_task(name) for name in ("fetch_logs", "generate_rca", "index_code"))
    ]


def test_cron_preview_describes_and_lists_next_runs(api):
    """A valid expression: normalised, in words, the next runs in UTC for its time zone."""
    response = api.get(f"{BASE}/cron/preview", {"expression": "0 9 * * MON", "timezone": "Europe/Paris", "count": 2})
    assert response.status_code == HTTPStatus.OK
    body = response.json()
    runs = [datetime.fromisoformat(run) for run in body.pop("next_runs")]
    assert body == {"valid": True, "expression": "0 9 * * 1", "description": "At 09:00, only on Monday", "error": None}
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
        "description": None,
        "next_runs": [],
        "error": "minute: step 0 must be between 1 and 59.",
    }


def test_health_answers_anonymously_with_status_only():
    """No credentials needed; nothing but states."""
    response = APIClient().get(f"{BASE}/health")
    assert response.status_code == HTTPStatus.OK
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok", "beat": "unknown"}


def test_health_with_the_broker_down_is_degraded(monkeypatch):
    """A broker that refuses connections makes the status degraded, still 200."""
    unreachable = _unreachable_celery_app()
    monkeypatch.setitem(health.CHECKS, "broker", lambda: health.check_broker(unreachable))
    response = APIClient().get(f"{BASE}/health")
    assert response.status_code == HTTPStatus.OK
    assert response.json() == {"status": "degraded", "database": "ok", "broker": "down", "beat": "unknown"}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL to point at a closed port")
def test_health_with_the_database_down_answers_503(monkeypatch):
    """A database that refuses connections: 503, status down."""
    backend = load_backend(connection.settings_dict["ENGINE"])
    unreachable = backend.DatabaseWrapper(
        {**connection.settings_dict, "HOST": "127.0.0.1", "PORT": "1"}, alias="unreachable"
    )
    monkeypatch.setitem(health.CHECKS, "database", lambda: health.check_database(unreachable))
    response = APIClient().get(f"{BASE}/health")
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json() == {"status": "down", "database": "down", "broker": "ok", "beat": "unknown"}


# --- authentication and API keys --------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["Token", "Api-Key"])
def test_api_key_works_with_either_scheme_and_is_the_audit_actor(api_key, service, scheme):
    """Both header schemes authenticate; the audit trail names the key."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{scheme} {api_key}")
    response = client.post(
        f"{BASE}/services/web-app/schedules", {"task_name": "fetch_logs", "cron_expression": "0 * * * *"}, format="json"
    )
    assert response.status_code == HTTPStatus.CREATED
    assert AuditEvent.objects.get(schedule_id=response.json()["id"]).actor == "api-key:fastapi"


def test_staff_session_is_accepted_and_audited_as_the_user(staff, service):
    """A logged-in staff user may use the API; the audit names the user."""
    response = staff.post(
        f"{BASE}/services/web-app/schedules", {"task_name": "fetch_logs", "cron_expression": "0 * * * *"}, format="json"
    )
    assert response.status_code == HTTPStatus.CREATED
    assert AuditEvent.objects.get(schedule_id=response.json()["id"]).actor == "user:alice"


def test_api_key_command_creates_lists_and_revokes():
    """The key is printed once and stored hashed; after revoke it stops working."""
    out = StringIO()
    call_command("api_key", "create", "fastapi", stdout=out)
    key = out.getvalue().splitlines()[-1]
    prefix = key.split(".")[0]
    stored = APIKey.objects.get(prefix=prefix)
    assert key not in stored.hashed_key and stored.hashed_key.startswith("sha512$$")
    assert _key_client(key).get(f"{BASE}/tasks").status_code == HTTPStatus.OK

    with pytest.raises(CommandError, match="exists"):
        call_command("api_key", "create", "fastapi", stdout=StringIO())

    listed = StringIO()
    call_command("api_key", "list", stdout=listed)
    assert prefix in listed.getvalue() and "active" in listed.getvalue()

    call_command("api_key", "revoke", prefix, stdout=StringIO())
    response = _key_client(key).get(f"{BASE}/tasks")
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json() == {"detail": "Invalid API key.", "code": "authentication_failed"}
    with pytest.raises(CommandError, match="No API key"):
        call_command("api_key", "revoke", "nope", stdout=StringIO())


def _record_sends(schedule, count: int) -> list[Dispatch]:
    """What the fleet scheduler writes as it sends: one record per slot, a minute apart."""
    start = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    return [
        Dispatch.objects.create(
            periodic_task_name=schedule.periodic_task.name,
            slot=start + timedelta(minutes=index),
            task_id=str(uuid.uuid4()),
            sent_at=start + timedelta(minutes=index, milliseconds=3),
        )
        for index in range(count)
    ]


def test_dispatches_show_the_last_ten_sends_newest_first(api, schedule, make_schedule):
    """The schedule's own recent sends only, at most 10, newest slot first."""
    sends = _record_sends(schedule, 12)
    _record_sends(make_schedule(cron_expression="0 * * * *"), 3)

    response = api.get(f"{BASE}/schedules/{schedule.pk}/dispatches")

    assert response.status_code == HTTPStatus.OK
    assert response.json() == [
        {"slot": send.slot.isoformat(), "task_id": send.task_id, "sent_at": send.sent_at.isoformat()}
        for send in reversed(sends[2:])
    ]


def test_dispatches_of_an_unknown_schedule_is_404(api):
    response = api.get(f"{BASE}/schedules/{uuid.uuid4()}/dispatches")
    assert (response.status_code, response.json()) == (
        HTTPStatus.NOT_FOUND,
        {"detail": "Schedule not found", "code": "not_found"},
    )
