"""The schedules list: columns, query count, filters and search, and its actions (enable, disable, run now, delete)."""

from datetime import UTC, datetime
from http import HTTPStatus

import pytest
from django_celery_beat.models import PeriodicTask

from luffy_admin.celery import app as celery_app
from schedules import services
from schedules.models import AuditEvent, TaskSchedule

from .helpers import SCHEDULES_URL, action_post, shown_messages

pytestmark = pytest.mark.django_db


def test_schedule_list_shows_timing_in_words_and_runs(admin_client, make_schedule, actor):
    """Columns: service, task, words, timing, zone, enabled, last run, next run (UTC, to the minute)."""
    schedule = make_schedule(cron_expression="0 9 * * 1-5", timezone="Europe/Paris")
    disabled = make_schedule(task_name="index_code", schedule_type="interval", interval_seconds=900)
    services.schedule_set_enabled(actor=actor, schedule=disabled, enabled=False)
    # What beat writes back after a send (as in test_api): the list shows it without the seconds.
    PeriodicTask.objects.filter(pk=schedule.periodic_task_id).update(
        last_run_at=datetime(2026, 11, 27, 8, 0, 3, tzinfo=UTC)
    )
    response = admin_client.get(SCHEDULES_URL)
    assert response.status_code == HTTPStatus.OK
    assert [header["text"] for header in response.context["result_headers"][1:]] == [
        "service",
        "task",
        "in words",
        "timing",
        "time zone",
        "enabled",
        "last run (UTC)",
        "next run (UTC)",
    ]
    admin_ = response.context["cl"].model_admin
    rows = [
        [
            admin_.task(row),
            admin_.timing_words(row),
            admin_.timing_spec(row),
            admin_.timezone(row),
            admin_.enabled(row),
            admin_.last_run(row),
            admin_.next_run(row),
        ]
        for row in response.context["cl"].result_list
    ]
    assert rows == [
        [
            "fetch_logs",
            "At 09:00, Monday through Friday",
            "0 9 * * 1-5",
            "Europe/Paris",
            True,
            "2026-11-27 08:00",
            "2026-11-30 08:00",  # the first weekday 09:00 in Paris after the last run
        ],
        ["index_code", "Every 15 minutes", "every 900 s", "UTC", False, "-", "-"],
    ]
    assert "At 09:00, Monday through Friday" in response.content.decode()


def test_schedule_list_costs_the_same_queries_for_more_rows(admin_client, make_schedule, django_assert_max_num_queries):
    """Beat rows come with the list query: ten schedules cost no more queries than one."""
    make_schedule()
    with django_assert_max_num_queries(100) as one:
        admin_client.get(SCHEDULES_URL)
    for minute in range(1, 10):
        make_schedule(cron_expression=f"{minute} * * * *")
    with django_assert_max_num_queries(len(one.captured_queries)):
        response = admin_client.get(SCHEDULES_URL)
    assert len(response.context["cl"].result_list) == 10


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"service__id__exact": "billing"}, ["billing/fetch_logs"]),
        ({"task": "index_code"}, ["web-app/index_code"]),
        ({"type": "interval"}, ["web-app/index_code"]),
        ({"type": "cron"}, ["billing/fetch_logs", "web-app/fetch_logs"]),
        ({"periodic_task__enabled__exact": "0"}, ["web-app/fetch_logs"]),
        ({"periodic_task__enabled__exact": "1"}, ["billing/fetch_logs", "web-app/index_code"]),
        ({"q": "bill"}, ["billing/fetch_logs"]),
        ({"q": "index"}, ["web-app/index_code"]),
    ],
)
def test_schedule_list_filters_and_search(admin_client, service, make_service, make_schedule, actor, query, expected):
    """Filter by service, task, type and enabled; search by service or task."""
    web, billing = service, make_service("billing", name="Billing")
    services.schedule_set_enabled(actor=actor, schedule=make_schedule(web), enabled=False)
    make_schedule(web, task_name="index_code", schedule_type="interval", interval_seconds=900)
    make_schedule(billing)
    response = admin_client.get(SCHEDULES_URL, query)
    assert response.status_code == HTTPStatus.OK
    assert [f"{row.service_id}/{row.task_name}" for row in response.context["cl"].result_list] == expected


@pytest.mark.parametrize(
    ("action", "enabled", "message"),
    [
        ("disable_schedules", False, "2 schedules disabled: web-app / fetch_logs, web-app / index_code."),
        ("enable_schedules", True, "1 schedule enabled: web-app / generate_rca."),
    ],
)
def test_enable_and_disable_actions_report_what_they_did(admin_client, make_schedule, actor, action, enabled, message):
    """Each action goes through schedule_set_enabled for each row, audited, and says what changed."""
    schedules = [make_schedule(), make_schedule(task_name="index_code"), make_schedule(task_name="generate_rca")]
    services.schedule_set_enabled(actor=actor, schedule=schedules[2], enabled=False)
    response = admin_client.post(SCHEDULES_URL, action_post(action, schedules))
    assert response.status_code == HTTPStatus.FOUND
    already = (
        "1 schedule already disabled, left as it was."
        if not enabled
        else "2 schedules already enabled, left as they were."
    )
    assert shown_messages(response) == [message, already]
    assert set(PeriodicTask.objects.values_list("enabled", flat=True)) == {enabled}
    assert AuditEvent.objects.filter(action="toggle", actor="user:admin").count() == (2 if not enabled else 1)


def test_run_now_asks_then_sends_each_task_to_the_broker(
    admin_client, make_schedule, django_capture_on_commit_callbacks
):
    """Run now shows a confirmation first; confirmed, it sends [service_id] and reports the task id."""
    schedule = make_schedule()
    payload = action_post("run_now", [schedule])
    confirmation = admin_client.post(SCHEDULES_URL, payload)
    assert confirmation.status_code == HTTPStatus.OK
    assert "Yes, run now" in confirmation.content.decode()
    assert not AuditEvent.objects.filter(action="run_now").exists()

    with celery_app.connection_for_write() as connection:
        queue = connection.SimpleQueue("default")
        queue.clear()
        with django_capture_on_commit_callbacks(execute=True):
            response = admin_client.post(SCHEDULES_URL, {**payload, "post": "yes"})
        message = queue.get(timeout=5)
        message.ack()
        queue.close()
    task_id = AuditEvent.objects.get(action="run_now", actor="user:admin").after["task_id"]
    assert shown_messages(response) == [f"1 task sent: web-app / fetch_logs (task id {task_id})."]
    assert (message.headers["id"], message.headers["task"], message.decode()[0]) == (
        task_id,
        "src.services.tasks.fetch_and_process_logs",
        ["web-app"],
    )


@pytest.mark.django_db(transaction=True)
def test_run_now_with_the_broker_down_says_it_was_not_sent(admin_client, make_schedule, monkeypatch):
    """A broker that refuses connections is reported per schedule, not a 500, and (as in the
    API) no run that could not happen enters the audit trail."""
    schedule = make_schedule()
    # A real refused connection: point the app at a closed port and drop its cached pools.
    # Real commits (transaction=True) so the send happens inside the action, as in production.
    monkeypatch.setitem(celery_app.conf, "broker_write_url", "redis://127.0.0.1:1/0")
    monkeypatch.setattr(celery_app, "_pool", None)
    monkeypatch.setattr(celery_app.amqp, "_producer_pool", None)
    response = admin_client.post(SCHEDULES_URL, action_post("run_now", [schedule], post="yes"))
    assert response.status_code == HTTPStatus.FOUND
    [message] = shown_messages(response)
    assert (
        message == "web-app / fetch_logs not sent: The task broker is unreachable; nothing was sent. Try again later."
    )
    assert not AuditEvent.objects.filter(action="run_now").exists()


def test_schedule_delete_leaves_no_beat_row(admin_client, make_schedule):
    """Deleting from the change page goes through schedule_delete."""
    schedule = make_schedule()
    response = admin_client.post(f"{SCHEDULES_URL}{schedule.pk}/delete/", {"post": "yes"})
    assert response.status_code == HTTPStatus.FOUND
    assert (TaskSchedule.objects.count(), PeriodicTask.objects.count()) == (0, 0)
    assert AuditEvent.objects.get(action="delete").actor == "user:admin"


def test_schedule_bulk_delete_leaves_no_beat_rows(admin_client, make_schedule):
    """The delete-selected action deletes every selected schedule and its PeriodicTask."""
    schedules = [make_schedule(), make_schedule(task_name="index_code")]
    response = admin_client.post(SCHEDULES_URL, action_post("delete_selected", schedules, post="yes"))
    assert response.status_code == HTTPStatus.FOUND
    assert (TaskSchedule.objects.count(), PeriodicTask.objects.count()) == (0, 0)
    assert AuditEvent.objects.filter(action="delete", actor="user:admin").count() == 2
