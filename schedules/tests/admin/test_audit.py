"""The audit trail in the admin: History pages of services and schedules, and the read-only event list."""

from http import HTTPStatus

import pytest

from schedules import services
from schedules.models import AuditEvent

from .helpers import AUDIT_EVENTS_URL, SCHEDULES_URL, SERVICES_URL, schedule_post

pytestmark = pytest.mark.django_db


def test_service_history_lists_its_audit_events(admin_client, make_schedule):
    """The History page of a service shows its own and its schedules' changes."""
    make_schedule()
    response = admin_client.get(f"{SERVICES_URL}web-app/history/")
    assert response.status_code == HTTPStatus.OK
    assert [(row["event"].action, row["event"].target) for row in response.context["events"]] == [
        ("create", "schedule"),
        ("create", "service"),
    ]


def test_schedule_history_shows_who_changed_what(admin_client, make_schedule):
    """The History page lists the schedule's audit events, newest first, with before and after."""
    schedule = make_schedule(cron_expression="*/15 * * * *")
    admin_client.post(f"{SCHEDULES_URL}{schedule.pk}/change/", schedule_post(cron_expression="0 * * * *"))
    response = admin_client.get(f"{SCHEDULES_URL}{schedule.pk}/history/")
    assert response.status_code == HTTPStatus.OK
    rows = [(row["event"].actor, row["event"].action, row["changes"]) for row in response.context["events"]]
    assert rows[0] == ("user:admin", "update", [("cron_expression", "*/15 * * * *", "0 * * * *")])
    assert rows[1][:2] == ("system:tests", "create")
    assert "user:admin" in response.content.decode()


def test_audit_events_are_listed_read_only(admin_client, make_schedule, actor):
    """The audit list shows every event with a one-line summary; nobody can add, change or delete one."""
    schedule = make_schedule(cron_expression="@hourly")
    services.schedule_set_enabled(actor=actor, schedule=schedule, enabled=False)
    task_id = services.schedule_run_now(actor=actor, schedule=schedule)
    services.schedule_delete(actor=actor, schedule=schedule)
    response = admin_client.get(AUDIT_EVENTS_URL, {"q": str(schedule.pk)})
    model_admin = response.context["cl"].model_admin
    assert [(event.action, model_admin.summary(event)) for event in response.context["cl"].result_list] == [
        ("delete", "task_name=fetch_logs; schedule_type=cron; cron_expression=0 * * * *; timezone=UTC; enabled=False"),
        ("run_now", f"task_id={task_id}"),
        ("toggle", "enabled: True → False"),
        ("create", "task_name=fetch_logs; schedule_type=cron; cron_expression=0 * * * *; timezone=UTC; enabled=True"),
    ]
    event = AuditEvent.objects.first()
    assert admin_client.get(f"{AUDIT_EVENTS_URL}add/").status_code == HTTPStatus.FORBIDDEN
    assert (
        admin_client.post(f"{AUDIT_EVENTS_URL}{event.pk}/delete/", {"post": "yes"}).status_code == HTTPStatus.FORBIDDEN
    )
    assert AuditEvent.objects.count() == 5
