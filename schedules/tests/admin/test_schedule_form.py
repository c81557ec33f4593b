"""The schedule form: add and edit through the write path, refusals on the field at fault, the status shown."""

import json
import re
from datetime import UTC, datetime, timedelta
from http import HTTPStatus

import pytest
from django import forms
from django_celery_beat.models import PeriodicTask

from schedules import beat_rows, selectors, services
from schedules.admin.display import utc
from schedules.admin.forms import ScheduleForm
from schedules.models import AuditEvent, Dispatch, TaskSchedule

from .helpers import SCHEDULES_URL, SERVICES_URL, errors_on_form, schedule_post, shown_messages

pytestmark = pytest.mark.django_db


def test_schedule_add_form_offers_the_catalogue_and_the_service(admin_client, service):
    """The add link from a service page preselects it; tasks come from the catalogue only."""
    response = admin_client.get(f"{SCHEDULES_URL}add/", {"service": "web-app"})
    form = response.context["adminform"].form
    assert form.initial["service"] == "web-app"
    assert [value for value, _ in form.fields["task_name"].choices] == ["fetch_logs", "generate_rca", "index_code"]
    assert "Example" in form.fields["cron_expression"].help_text


@pytest.mark.parametrize("page", ["add", "change"])
def test_schedule_form_labels_are_capitalised(admin_client, make_schedule, page):
    """Every label on the schedule form starts with a capital letter, like the labels Django writes itself."""
    schedule = make_schedule()
    url = f"{SCHEDULES_URL}add/" if page == "add" else f"{SCHEDULES_URL}{schedule.pk}/change/"
    html = admin_client.get(url).content.decode()
    labels = [re.sub(r"<[^>]*>", "", label).strip() for label in re.findall(r"<label[^>]*>(.*?)</label>", html, re.S)]
    form_labels = [
        "Service:",
        "Task:",
        "Type:",
        "Cron expression",
        "Fixed interval",
        "Cron expression:",
        "Interval (seconds):",
        "Jitter (seconds):",
        "Time zone:",
        "Enabled",
    ]
    status_labels = [
        "In words:",
        "Resolved cron expression:",
        "Last run:",
        "Next run:",
        "Runs so far:",
        "Recent dispatches:",
        "Beat entry:",
        "Created:",
        "Updated:",
        "Runtime and lateness:",
        "Runs:",
    ]
    assert labels == (form_labels if page == "add" else form_labels + status_labels)


def test_schedule_add_creates_the_beat_entry_and_returns_to_the_service(admin_client, admin_user, service):
    """A valid add goes through schedule_create, audits the user, and lands on the service page."""
    response = admin_client.post(
        f"{SCHEDULES_URL}add/", schedule_post(cron_expression="@hourly", timezone="Europe/Paris")
    )
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == f"{SERVICES_URL}web-app/change/"
    schedule = TaskSchedule.objects.get()
    periodic_task = PeriodicTask.objects.get(pk=schedule.periodic_task_id)
    assert json.loads(periodic_task.args) == ["web-app"]
    assert periodic_task.task == "src.services.tasks.fetch_and_process_logs"
    assert beat_rows.timing_of(schedule.periodic_task).cron_expression == "0 * * * *"
    event = AuditEvent.objects.get(target="schedule")
    assert (event.action, event.actor, event.user) == ("create", "user:admin", admin_user)
    assert "added successfully" in shown_messages(response)[0]


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"cron_expression": "61 * * * *"}, {"cron_expression": ["minute: 61 is out of range 0-59."]}),
        ({"cron_expression": "*/0 * * * *"}, {"cron_expression": ["minute: step 0 must be between 1 and 59."]}),
        (
            {"cron_expression": "0 0 30 2 *"},
            {"cron_expression": ["This expression never fires: day 30 never occurs in the selected month(s)."]},
        ),
        (
            {"cron_expression": "* * * *"},
            {
                "cron_expression": [
                    "A cron expression has exactly 5 fields (minute hour day-of-month month day-of-week); got 4."
                ]
            },
        ),
        (
            {"cron_expression": "@reboot"},
            {"cron_expression": ["@reboot is not supported: beat has no notion of a reboot."]},
        ),
        ({"cron_expression": ""}, {"cron_expression": ["cron_expression is required for a cron schedule."]}),
        (
            {"schedule_type": "interval", "interval_seconds": "59", "cron_expression": ""},
            {"interval_seconds": ["interval_seconds for fetch_logs must be between 60 and 86400."]},
        ),
        (
            {"schedule_type": "interval", "interval_seconds": "900"},
            {"cron_expression": ["Leave cron_expression empty for an interval schedule."]},
        ),
        (
            {"schedule_type": "interval", "interval_seconds": "1.5", "cron_expression": ""},
            {"interval_seconds": ["Enter a whole number."]},
        ),
        (
            {"timezone": "Mars/Olympus"},
            {"timezone": ["'Mars/Olympus' is not an IANA time zone name such as 'Europe/Paris'."]},
        ),
        (
            {"task_name": "deploy"},
            {"task_name": ["Select a valid choice. deploy is not one of the available choices."]},
        ),
    ],
)
def test_schedule_add_refusal_shows_on_the_field(admin_client, service, fields, errors):
    """Invalid timing is reported on its field, saying why, and nothing is written."""
    response = admin_client.post(f"{SCHEDULES_URL}add/", schedule_post(**fields))
    assert response.status_code == HTTPStatus.OK
    assert errors_on_form(response) == errors
    assert (
        TaskSchedule.objects.count(),
        PeriodicTask.objects.count(),
        AuditEvent.objects.filter(target="schedule").count(),
    ) == (0, 0, 0)


def test_schedule_add_duplicate_is_refused_on_the_form(admin_client, make_schedule):
    """An exact duplicate shows the service's conflict message at the top of the form."""
    existing = make_schedule(cron_expression="*/15 * * * *")
    response = admin_client.post(f"{SCHEDULES_URL}add/", schedule_post(cron_expression="*/15 * * * *"))
    assert response.status_code == HTTPStatus.OK
    assert errors_on_form(response) == {
        "__all__": [f"Service 'web-app' already has this fetch_logs schedule (id {existing.pk})."]
    }
    assert TaskSchedule.objects.count() == 1


def test_schedule_write_refused_after_the_form_passed_is_a_message(admin_client, make_schedule, monkeypatch):
    """If the write refuses what the form accepted (a concurrent duplicate), the page says so; no 500."""
    existing = make_schedule(cron_expression="*/15 * * * *")
    monkeypatch.setattr(ScheduleForm, "clean", forms.ModelForm.clean)
    url = f"{SCHEDULES_URL}add/?service=web-app"
    response = admin_client.post(url, schedule_post(cron_expression="*/15 * * * *"))
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == url
    assert shown_messages(response) == [
        f"Nothing was saved: Service 'web-app' already has this fetch_logs schedule (id {existing.pk})."
    ]
    assert (TaskSchedule.objects.count(), PeriodicTask.objects.count()) == (1, 1)


def test_schedule_edit_form_shows_the_current_timing(admin_client, make_schedule):
    """The change form starts from the PeriodicTask's timing and status."""
    schedule = make_schedule(cron_expression="0 2 * * *", timezone="Asia/Tokyo")
    response = admin_client.get(f"{SCHEDULES_URL}{schedule.pk}/change/")
    initial = response.context["adminform"].form.initial
    assert {key: initial[key] for key in services.SCHEDULE_FIELDS} == {
        "task_name": "fetch_logs",
        "schedule_type": "cron",
        "cron_expression": "0 2 * * *",
        "interval_seconds": None,
        "jitter_seconds": None,
        "timezone": "Asia/Tokyo",
        "enabled": True,
        "key": None,
    }
    page = response.content.decode()
    assert "At 02:00" in page and utc(selectors.schedule_next_run(schedule)) in page


def test_schedule_edit_switches_type_through_the_write_path(admin_client, make_schedule):
    """Switching to an interval updates the beat entry and audits before and after."""
    schedule = make_schedule(cron_expression="*/15 * * * *")
    response = admin_client.post(
        f"{SCHEDULES_URL}{schedule.pk}/change/",
        schedule_post(schedule_type="interval", cron_expression="", interval_seconds="600", enabled=None),
    )
    assert response.status_code == HTTPStatus.FOUND
    periodic_task = PeriodicTask.objects.get(pk=schedule.periodic_task_id)
    assert (periodic_task.crontab, periodic_task.interval.every, periodic_task.enabled) == (None, 600, False)
    event = AuditEvent.objects.get(action="update")
    assert event.actor == "user:admin"
    assert event.before == {
        "task_name": "fetch_logs",
        "schedule_type": "cron",
        "cron_expression": "*/15 * * * *",
        "interval_seconds": None,
        "jitter_seconds": None,
        "timezone": "UTC",
        "enabled": True,
        "key": None,
    }
    assert event.after == {
        "task_name": "fetch_logs",
        "schedule_type": "interval",
        "cron_expression": None,
        "interval_seconds": 600,
        "jitter_seconds": None,
        "timezone": "UTC",
        "enabled": False,
        "key": None,
    }


def test_schedule_edit_refusal_changes_nothing(admin_client, make_schedule):
    """A bad edit shows the error on the field and leaves the beat entry as it was."""
    schedule = make_schedule(cron_expression="*/15 * * * *")
    response = admin_client.post(f"{SCHEDULES_URL}{schedule.pk}/change/", schedule_post(cron_expression="* 24 * * *"))
    assert errors_on_form(response) == {"cron_expression": ["hour: 24 is out of range 0-23."]}
    assert beat_rows.timing_of(TaskSchedule.objects.get().periodic_task).cron_expression == "*/15 * * * *"
    assert not AuditEvent.objects.filter(action="update").exists()


def test_schedule_edit_into_a_sibling_is_a_conflict(admin_client, make_schedule):
    """Editing a schedule into an exact copy of another one is refused on the form."""
    sibling = make_schedule(cron_expression="0 * * * *")
    schedule = make_schedule(cron_expression="30 * * * *")
    response = admin_client.post(f"{SCHEDULES_URL}{schedule.pk}/change/", schedule_post(cron_expression="0 * * * *"))
    assert errors_on_form(response) == {
        "__all__": [f"Service 'web-app' already has this fetch_logs schedule (id {sibling.pk})."]
    }


def test_schedule_page_shows_recent_dispatches(admin_client, make_schedule):
    """The change page lists what beat last sent for the schedule, with slot and task id."""
    schedule = make_schedule()
    slot = datetime(2026, 11, 27, 9, 15, tzinfo=UTC)
    Dispatch.objects.create(
        periodic_task_name=schedule.periodic_task.name,
        slot=slot,
        task_id="5f0c-task",
        sent_at=slot + timedelta(milliseconds=4),
    )
    response = admin_client.get(f"{SCHEDULES_URL}{schedule.pk}/change/")
    assert response.status_code == HTTPStatus.OK
    assert "2026-11-27 09:15:00 UTC sent 2026-11-27 09:15:00 UTC (task 5f0c-task)" in response.content.decode()


def test_h_schedule_added_in_the_admin_shows_written_and_resolved(admin_client, service):
    """An operator writes H/15; the page keeps H/15 in the form and shows
    the resolved crontab beat runs, in words."""
    response = admin_client.post(f"{SCHEDULES_URL}add/", schedule_post(cron_expression="H/15 * * * *"))
    assert response.status_code == HTTPStatus.FOUND
    schedule = TaskSchedule.objects.get()
    page = admin_client.get(f"{SCHEDULES_URL}{schedule.pk}/change/")
    assert page.context["adminform"].form.initial["cron_expression"] == "H/15 * * * *"
    html = page.content.decode()
    assert "4,19,34,49 * * * *" in html and "At 4, 19, 34, and 49 minutes past the hour" in html


def test_interval_jitter_over_a_tenth_is_refused_on_the_form(admin_client, service):
    """The admin refuses the jitter the API refuses, with the same message."""
    response = admin_client.post(
        f"{SCHEDULES_URL}add/",
        schedule_post(schedule_type="interval", cron_expression="", interval_seconds="600", jitter_seconds="61"),
    )
    assert errors_on_form(response) == {
        "jitter_seconds": ["jitter_seconds may be at most a tenth of the interval: 60 for 600 s."]
    }
