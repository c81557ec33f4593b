"""Bad input and unknown ids: refused with a clear `{detail, code, errors?}` body, nothing written."""

import json
import uuid
from http import HTTPStatus

import pytest

from schedules.api.exception_handler import server_error
from schedules.tests.api.helpers import BASE, CREATE, REFUSAL, send

pytestmark = pytest.mark.django_db


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
    response = send(api, "POST", f"{BASE}/services/web-app/schedules", raw=raw)
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
}


@pytest.mark.parametrize(REFUSAL, list(BAD_REQUESTS.values()), ids=list(BAD_REQUESTS))
def test_bad_request_is_refused_with_a_clear_body_and_writes_nothing(
    assert_refused, method, path, request_kwargs, status, code, error_fields
):
    """Each bad request gets its 4xx, `detail` (+ `errors` per field for validation), and no write."""
    assert_refused(method, path, request_kwargs, status, code, error_fields)
