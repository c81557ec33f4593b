"""Schedules over HTTP as the FastAPI stack calls them: the seed's usage, the representation,
toggle, run now, history and recent dispatches."""

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from http import HTTPStatus

import pytest
import redis
from django.conf import settings
from django_celery_beat.models import PeriodicTask

from schedules import health
from schedules.models import AuditEvent, Dispatch, TaskSchedule
from schedules.services import run_now
from schedules.tests.api.helpers import (
    BASE,
    database_state,
    expected_body,
    iso,
    next_slot,
    send,
    unreachable_celery_app,
)

pytestmark = pytest.mark.django_db


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
    assert created.json() == expected_body(
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
        next_run=iso(next_slot(changed_at, 15)),
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
    assert updated.json() == expected_body(
        schedule_id,
        task_name="fetch_logs",
        cron_expression="*/30 * * * *",
        enabled=True,
        next_run=iso(next_slot(changed_at, 30)),
        description="Every 30 minutes",
    )

    toggled = api.post(f"{BASE}/schedules/{schedule_id}/toggle?enabled=false")
    assert toggled.status_code == HTTPStatus.OK
    assert toggled.json() == {
        "message": "Schedule disabled successfully",
        "schedule": expected_body(
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
    response = send(api, method, BASE + path.format(id=schedule.pk) + slash, json_body={})
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
    assert response.json() == expected_body(
        schedule.pk,
        task_name="index_code",
        task_path="src.services.tasks.index_code_repository",
        schedule_type="interval",
        cron_expression=None,
        interval_seconds=900,
        timezone="UTC",
        next_run=iso(changed_at + timedelta(seconds=900)),
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


def test_switching_a_zoned_cron_schedule_to_an_interval_asks_for_utc(api, make_schedule):
    """Europe/Paris is not dropped silently: the switch is refused saying what to send, and
    goes through once the caller sends timezone UTC with it."""
    schedule = make_schedule(cron_expression="0 9 * * *", timezone="Europe/Paris")
    path = f"{BASE}/schedules/{schedule.pk}"
    response = api.patch(path, {"schedule_type": "interval", "interval_seconds": 3600}, format="json")
    message = (
        "This schedule's time zone is Europe/Paris; an interval schedule runs in UTC. "
        'Send timezone "UTC" with the switch to an interval.'
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json() == {"detail": f"timezone: {message}", "code": "invalid", "errors": {"timezone": [message]}}
    assert PeriodicTask.objects.get(pk=schedule.periodic_task_id).crontab.timezone.key == "Europe/Paris"

    response = api.patch(
        path, {"schedule_type": "interval", "interval_seconds": 3600, "timezone": "UTC"}, format="json"
    )
    assert (response.status_code, response.json()["timezone"]) == (HTTPStatus.OK, "UTC")


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
    assert response.json() == expected_body(schedule.pk, enabled=False, next_run=None, description="Every 15 minutes")
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
    response = send(api, "POST", path, raw=b"null") if body == "null" else send(api, "POST", path, json_body=body)
    assert response.status_code == HTTPStatus.OK
    assert response.json()["message"] == f"Schedule {'enabled' if enabled else 'disabled'} successfully"
    assert response.json()["schedule"]["enabled"] is enabled
    assert PeriodicTask.objects.get(pk=schedule.periodic_task_id).enabled is enabled


@pytest.mark.parametrize(
    ("query", "body", "message"),
    [
        ("?enabled=", None, "enabled must be true or false."),
        ("?enabled=maybe", None, "enabled must be true or false."),
        ("", None, 'enabled is required: ?enabled=true|false or a body {"enabled": true}.'),
        ("?enabled=true", {"enabled": False}, "The query string and the body disagree."),
    ],
)
def test_toggle_without_a_clear_enabled_is_refused(api, schedule, query, body, message):
    """The full error body names `enabled`; the schedule stays as it was."""
    response = send(api, "POST", f"{BASE}/schedules/{schedule.pk}/toggle{query}", json_body=body)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json() == {"detail": f"enabled: {message}", "code": "invalid", "errors": {"enabled": [message]}}
    assert PeriodicTask.objects.get(pk=schedule.periodic_task_id).enabled is True


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
    monkeypatch.setattr(run_now, "celery_app", unreachable_celery_app())
    before = database_state()
    response = api.post(f"{BASE}/schedules/{schedule.pk}/run")
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json() == BROKER_DOWN
    assert database_state() == before


@pytest.mark.django_db(transaction=True)
def test_run_when_the_send_itself_fails_answers_503(api, schedule, monkeypatch):
    """The broker lost between the check and the send (after commit): a 503, not a 500, and
    the audit event says nothing went out."""
    monkeypatch.setattr(run_now, "celery_app", unreachable_celery_app())
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
    timing = {
        "task_name": "fetch_logs",
        "schedule_type": "cron",
        "interval_seconds": None,
        "jitter_seconds": None,
        "timezone": "UTC",
        "key": None,
    }
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
