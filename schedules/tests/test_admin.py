"""The Django admin, through the test client: pages, forms, inline errors, actions, beat's pages."""

import json
from datetime import UTC, datetime, timedelta
from http import HTTPStatus

import pytest
from django import forms
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from luffy_admin.celery import app as celery_app
from schedules import beat_rows, selectors, services
from schedules.admin import utc
from schedules.forms import ScheduleForm
from schedules.models import AuditEvent, Dispatch, Service, TaskSchedule

pytestmark = pytest.mark.django_db

SERVICES_URL = "/admin/schedules/service/"
SCHEDULES_URL = "/admin/schedules/taskschedule/"
CRONTABS_URL = "/admin/django_celery_beat/crontabschedule/"
PERIODIC_TASKS_URL = "/admin/django_celery_beat/periodictask/"


def _messages(response) -> list[str]:
    return [message.message for message in get_messages(response.wsgi_request)]


def _form_errors(response) -> dict:
    return {field: list(errors) for field, errors in response.context["adminform"].form.errors.items()}


def _schedule_post(service_id="web-app", **fields) -> dict:
    data = {
        "service": service_id,
        "task_name": "fetch_logs",
        "schedule_type": "cron",
        "cron_expression": "*/15 * * * *",
        "interval_seconds": "",
        "timezone": "UTC",
        "enabled": "on",
    }
    data.update(fields)
    return {key: value for key, value in data.items() if value is not None}


def _empty_inline(prefix) -> dict:
    """The management form of an inline with no rows, as the browser posts it."""
    return {f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"}


def _action(action, objects, **extra) -> dict:
    return {"action": action, ACTION_CHECKBOX_NAME: [str(obj.pk) for obj in objects], **extra}


# --- services -------------------------------------------------------------------------------


def test_service_list_shows_schedule_counts(admin_client, service, make_service, make_schedule):
    """Each service row carries its number of schedules."""
    make_service("billing", name="Billing")
    make_schedule(cron_expression="0 * * * *")
    make_schedule(task_name="index_code", cron_expression="@daily")
    response = admin_client.get(SERVICES_URL)
    assert response.status_code == HTTPStatus.OK
    rows = [(service.id, service.schedule_count) for service in response.context["cl"].result_list]
    assert rows == [("billing", 0), ("web-app", 2)]


def test_service_list_search_matches_id_and_name(admin_client, make_service):
    """Search finds services by id or name."""
    make_service("web-app", name="Storefront")
    make_service("billing", name="Invoices")
    for term, expected in (("web", ["web-app"]), ("invoice", ["billing"]), ("zzz", [])):
        response = admin_client.get(SERVICES_URL, {"q": term})
        assert [service.id for service in response.context["cl"].result_list] == expected


def test_service_page_shows_its_schedules_in_words_with_next_run(admin_client, make_schedule):
    """The service page lists each schedule: task, timing, zone, words, enabled, last and next run."""
    schedule = make_schedule(cron_expression="*/15 * * * *", timezone="Europe/Paris")
    interval = make_schedule(task_name="generate_rca", schedule_type="interval", interval_seconds=3600)
    response = admin_client.get(f"{SERVICES_URL}web-app/change/")
    assert response.status_code == HTTPStatus.OK
    page = response.content.decode()
    for text in (
        "fetch_logs",
        "*/15 * * * *",
        "Europe/Paris",
        "Every 15 minutes",
        utc(selectors.schedule_next_run(schedule)),
        "generate_rca",
        "every 3600 s",
        "Every hour",
        utc(selectors.schedule_next_run(interval)),
        f"{SCHEDULES_URL}{schedule.pk}/change/",
        f"{SCHEDULES_URL}add/?service=web-app",
    ):
        assert text in page, text


def test_service_add_goes_through_the_write_path(admin_client, admin_user):
    """Adding a service creates it and records the admin user in the audit trail."""
    response = admin_client.post(f"{SERVICES_URL}add/", {"id": "web-app", "name": "Web", "description": "Shop"})
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == f"{SERVICES_URL}web-app/change/"
    service = Service.objects.get()
    assert (service.id, service.name, service.description) == ("web-app", "Web", "Shop")
    event = AuditEvent.objects.get()
    assert (event.actor, event.user, event.action, event.target) == ("user:admin", admin_user, "create", "service")
    assert event.after == {"id": "web-app", "name": "Web", "description": "Shop"}


@pytest.mark.parametrize(
    ("service_id", "message"),
    [
        (
            "Web App",
            "A service id is 1-63 characters: lowercase letters, digits, '-' and '_', starting with a letter or digit.",
        ),
        ("web-app", "Service with this Service id already exists."),
    ],
)
def test_service_add_refusal_shows_on_the_id_field(admin_client, make_service, service_id, message):
    """A bad or taken id is reported on the id field and nothing new is written."""
    make_service("web-app")
    response = admin_client.post(f"{SERVICES_URL}add/", {"id": service_id, "name": "Other", "description": ""})
    assert response.status_code == HTTPStatus.OK
    assert _form_errors(response) == {"id": [message]}
    assert list(Service.objects.values_list("id", "name")) == [("web-app", "Web application")]


def test_service_edit_records_before_and_after(admin_client, service):
    """Renaming a service is audited with the admin user and both values."""
    response = admin_client.post(
        f"{SERVICES_URL}web-app/change/",
        {
            "name": "Shop",
            "description": "new",
            **_empty_inline("schedules"),
        },
    )
    assert response.status_code == HTTPStatus.FOUND
    event = AuditEvent.objects.get(action="update")
    assert event.actor == "user:admin"
    assert event.before == {"id": "web-app", "name": "Web application", "description": ""}
    assert event.after == {"id": "web-app", "name": "Shop", "description": "new"}


def test_service_delete_removes_its_schedules_and_beat_rows(admin_client, make_schedule):
    """The delete page lists the schedules and beat entries that go; confirming deletes them all."""
    first, second = make_schedule(), make_schedule(task_name="index_code")
    confirmation = admin_client.get(f"{SERVICES_URL}web-app/delete/")
    assert dict(confirmation.context["model_count"]) == {"services": 1, "schedules": 2, "periodic tasks": 2}
    page = confirmation.content.decode()
    assert f"Beat entry: luffy:web-app:{first.pk}" in page and f"Beat entry: luffy:web-app:{second.pk}" in page
    response = admin_client.post(f"{SERVICES_URL}web-app/delete/", {"post": "yes"})
    assert response.status_code == HTTPStatus.FOUND
    assert (Service.objects.count(), TaskSchedule.objects.count(), PeriodicTask.objects.count()) == (0, 0, 0)
    assert sorted(AuditEvent.objects.filter(action="delete").values_list("target", "actor")) == [
        ("schedule", "user:admin"),
        ("schedule", "user:admin"),
        ("service", "user:admin"),
    ]


def test_service_bulk_delete_uses_the_write_path(admin_client, service, make_service, make_schedule):
    """The delete-selected action deletes each service with its beat rows and audits each."""
    services_ = [service, make_service("billing")]
    make_schedule(services_[1])
    response = admin_client.post(SERVICES_URL, _action("delete_selected", services_, post="yes"))
    assert response.status_code == HTTPStatus.FOUND
    assert (Service.objects.count(), PeriodicTask.objects.count()) == (0, 0)
    assert AuditEvent.objects.filter(action="delete", target="service", actor="user:admin").count() == 2


def test_service_history_lists_its_audit_events(admin_client, make_schedule):
    """The History page of a service shows its own and its schedules' changes."""
    make_schedule()
    response = admin_client.get(f"{SERVICES_URL}web-app/history/")
    assert response.status_code == HTTPStatus.OK
    assert [(row["event"].action, row["event"].target) for row in response.context["events"]] == [
        ("create", "schedule"),
        ("create", "service"),
    ]


# --- schedules: list, filters, search -------------------------------------------------------


def test_schedule_list_shows_timing_in_words_and_runs(admin_client, make_schedule, actor):
    """Columns: service, task, words, timing, zone, enabled, last run, next run (UTC)."""
    schedule = make_schedule(cron_expression="0 9 * * 1-5", timezone="Europe/Paris")
    disabled = make_schedule(task_name="index_code", schedule_type="interval", interval_seconds=900)
    services.schedule_set_enabled(actor=actor, schedule=disabled, enabled=False)
    response = admin_client.get(SCHEDULES_URL)
    assert response.status_code == HTTPStatus.OK
    admin_ = response.context["cl"].model_admin
    rows = [
        [
            admin_.task(row),
            admin_.timing_words(row),
            admin_.timing_spec(row),
            admin_.timezone(row),
            admin_.enabled(row),
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
            utc(selectors.schedule_next_run(schedule)),
        ],
        ["index_code", "Every 15 minutes", "every 900 s", "UTC", False, "-"],
    ]
    assert utc(selectors.schedule_next_run(schedule)).endswith(" UTC")
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


# --- schedules: add and edit ---------------------------------------------------------------


def test_schedule_add_form_offers_the_catalogue_and_the_service(admin_client, service):
    """The add link from a service page preselects it; tasks come from the catalogue only."""
    response = admin_client.get(f"{SCHEDULES_URL}add/", {"service": "web-app"})
    form = response.context["adminform"].form
    assert form.initial["service"] == "web-app"
    assert [value for value, _ in form.fields["task_name"].choices] == ["fetch_logs", "generate_rca", "index_code"]
    assert "Example" in form.fields["cron_expression"].help_text


def test_schedule_add_creates_the_beat_entry_and_returns_to_the_service(admin_client, admin_user, service):
    """A valid add goes through schedule_create, audits the user, and lands on the service page."""
    response = admin_client.post(
        f"{SCHEDULES_URL}add/", _schedule_post(cron_expression="@hourly", timezone="Europe/Paris")
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
    assert "added successfully" in _messages(response)[0]


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
    response = admin_client.post(f"{SCHEDULES_URL}add/", _schedule_post(**fields))
    assert response.status_code == HTTPStatus.OK
    assert _form_errors(response) == errors
    assert (
        TaskSchedule.objects.count(),
        PeriodicTask.objects.count(),
        AuditEvent.objects.filter(target="schedule").count(),
    ) == (0, 0, 0)


def test_schedule_add_duplicate_is_refused_on_the_form(admin_client, make_schedule):
    """An exact duplicate shows the service's conflict message at the top of the form."""
    existing = make_schedule(cron_expression="*/15 * * * *")
    response = admin_client.post(f"{SCHEDULES_URL}add/", _schedule_post(cron_expression="*/15 * * * *"))
    assert response.status_code == HTTPStatus.OK
    assert _form_errors(response) == {
        "__all__": [f"Service 'web-app' already has this fetch_logs schedule (id {existing.pk})."]
    }
    assert TaskSchedule.objects.count() == 1


def test_schedule_write_refused_after_the_form_passed_is_a_message(admin_client, make_schedule, monkeypatch):
    """If the write refuses what the form accepted (a concurrent duplicate), the page says so; no 500."""
    existing = make_schedule(cron_expression="*/15 * * * *")
    monkeypatch.setattr(ScheduleForm, "clean", forms.ModelForm.clean)
    url = f"{SCHEDULES_URL}add/?service=web-app"
    response = admin_client.post(url, _schedule_post(cron_expression="*/15 * * * *"))
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == url
    assert _messages(response) == [
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
        _schedule_post(schedule_type="interval", cron_expression="", interval_seconds="600", enabled=None),
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
        "timezone": "UTC",
        "enabled": True,
        "key": None,
    }
    assert event.after == {
        "task_name": "fetch_logs",
        "schedule_type": "interval",
        "cron_expression": None,
        "interval_seconds": 600,
        "timezone": "UTC",
        "enabled": False,
        "key": None,
    }


def test_schedule_edit_refusal_changes_nothing(admin_client, make_schedule):
    """A bad edit shows the error on the field and leaves the beat entry as it was."""
    schedule = make_schedule(cron_expression="*/15 * * * *")
    response = admin_client.post(f"{SCHEDULES_URL}{schedule.pk}/change/", _schedule_post(cron_expression="* 24 * * *"))
    assert _form_errors(response) == {"cron_expression": ["hour: 24 is out of range 0-23."]}
    assert beat_rows.timing_of(TaskSchedule.objects.get().periodic_task).cron_expression == "*/15 * * * *"
    assert not AuditEvent.objects.filter(action="update").exists()


def test_schedule_edit_into_a_sibling_is_a_conflict(admin_client, make_schedule):
    """Editing a schedule into an exact copy of another one is refused on the form."""
    sibling = make_schedule(cron_expression="0 * * * *")
    schedule = make_schedule(cron_expression="30 * * * *")
    response = admin_client.post(f"{SCHEDULES_URL}{schedule.pk}/change/", _schedule_post(cron_expression="0 * * * *"))
    assert _form_errors(response) == {
        "__all__": [f"Service 'web-app' already has this fetch_logs schedule (id {sibling.pk})."]
    }


# --- schedules: actions, delete, history ---------------------------------------------------


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
    response = admin_client.post(SCHEDULES_URL, _action(action, schedules))
    assert response.status_code == HTTPStatus.FOUND
    already = (
        "1 schedule already disabled, left as it was."
        if not enabled
        else "2 schedules already enabled, left as they were."
    )
    assert _messages(response) == [message, already]
    assert set(PeriodicTask.objects.values_list("enabled", flat=True)) == {enabled}
    assert AuditEvent.objects.filter(action="toggle", actor="user:admin").count() == (2 if not enabled else 1)


def test_run_now_asks_then_sends_each_task_to_the_broker(
    admin_client, make_schedule, django_capture_on_commit_callbacks
):
    """Run now shows a confirmation first; confirmed, it sends [service_id] and reports the task id."""
    schedule = make_schedule()
    payload = _action("run_now", [schedule])
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
    assert _messages(response) == [f"1 task sent: web-app / fetch_logs (task id {task_id})."]
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
    response = admin_client.post(SCHEDULES_URL, _action("run_now", [schedule], post="yes"))
    assert response.status_code == HTTPStatus.FOUND
    [message] = _messages(response)
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
    response = admin_client.post(SCHEDULES_URL, _action("delete_selected", schedules, post="yes"))
    assert response.status_code == HTTPStatus.FOUND
    assert (TaskSchedule.objects.count(), PeriodicTask.objects.count()) == (0, 0)
    assert AuditEvent.objects.filter(action="delete", actor="user:admin").count() == 2


def test_schedule_history_shows_who_changed_what(admin_client, make_schedule):
    """The History page lists the schedule's audit events, newest first, with before and after."""
    schedule = make_schedule(cron_expression="*/15 * * * *")
    admin_client.post(f"{SCHEDULES_URL}{schedule.pk}/change/", _schedule_post(cron_expression="0 * * * *"))
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
    response = admin_client.get("/admin/schedules/auditevent/", {"q": str(schedule.pk)})
    model_admin = response.context["cl"].model_admin
    assert [(event.action, model_admin.summary(event)) for event in response.context["cl"].result_list] == [
        ("delete", "task_name=fetch_logs; schedule_type=cron; cron_expression=0 * * * *; timezone=UTC; enabled=False"),
        ("run_now", f"task_id={task_id}"),
        ("toggle", "enabled: True → False"),
        ("create", "task_name=fetch_logs; schedule_type=cron; cron_expression=0 * * * *; timezone=UTC; enabled=True"),
    ]
    event = AuditEvent.objects.first()
    assert admin_client.get("/admin/schedules/auditevent/add/").status_code == HTTPStatus.FORBIDDEN
    assert (
        admin_client.post(f"/admin/schedules/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code
        == HTTPStatus.FORBIDDEN
    )
    assert AuditEvent.objects.count() == 5


# --- django-celery-beat's pages -------------------------------------------------------------


def _crontab_post(minute="*/15", hour="*", day_of_month="*", month_of_year="*", day_of_week="*"):
    return {
        "minute": minute,
        "hour": hour,
        "day_of_month": day_of_month,
        "month_of_year": month_of_year,
        "day_of_week": day_of_week,
        "timezone": "UTC",
        **_empty_inline("periodictask_set"),
    }


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"minute": "61"}, {"minute": "minute: 61 is out of range 0-59."}),
        ({"hour": "*/0"}, {"hour": "hour: step 0 must be between 1 and 23."}),
        (
            {"day_of_month": "5/10"},
            {"day_of_month": "day of month: '5/10' needs a range before the step, e.g. '5-31/10'."},
        ),
        (
            {"day_of_month": "30", "month_of_year": "2"},
            {"__all__": "This expression never fires: day 30 never occurs in the selected month(s)."},
        ),
        ({"minute": "1 2"}, {"minute": "One cron field per box, without spaces. Example: */15"}),
    ],
)
def test_beat_crontab_form_refuses_what_beat_cannot_run(admin_client, fields, errors):
    """django-celery-beat's crontab page applies the project's cron rules, on the field at fault."""
    response = admin_client.post(f"{CRONTABS_URL}add/", _crontab_post(**fields))
    assert response.status_code == HTTPStatus.OK
    form_errors = _form_errors(response)
    for field, message in errors.items():
        assert message in form_errors[field]
    assert not CrontabSchedule.objects.exists()


def test_beat_crontab_form_stores_the_form_celery_reads(admin_client):
    """Names and Sunday-as-7 are stored as Celery's numbers."""
    response = admin_client.post(f"{CRONTABS_URL}add/", _crontab_post(minute="0", month_of_year="jan", day_of_week="7"))
    assert response.status_code == HTTPStatus.FOUND
    row = CrontabSchedule.objects.get()
    assert (row.minute, row.month_of_year, row.day_of_week) == ("0", "1", "0")


def test_beat_periodic_task_form_refuses_a_broken_crontab(admin_client):
    """A PeriodicTask cannot be pointed at a crontab row that beat cannot schedule."""
    broken = CrontabSchedule.objects.create(minute="61", hour="*", day_of_month="*", month_of_year="*", day_of_week="*")
    response = admin_client.post(
        f"{PERIODIC_TASKS_URL}add/",
        {
            "name": "cleanup",
            "task": "demo.cleanup",
            "enabled": "on",
            "crontab": broken.pk,
            "args": "[]",
            "kwargs": "{}",
            "headers": "{}",
        },
    )
    assert response.status_code == HTTPStatus.OK
    assert _form_errors(response)["crontab"] == [
        "Beat cannot schedule this crontab: minute: 61 is out of range 0-59. Fix the crontab first."
    ]
    assert not PeriodicTask.objects.exists()


@pytest.mark.parametrize("kind", ["crontab", "interval", "periodic task"])
def test_beat_delete_that_would_cascade_into_schedules_is_refused(admin_client, make_schedule, kind):
    """Deleting a beat row a service schedule needs shows Django's protected-objects refusal."""
    if kind == "crontab":
        schedule = make_schedule()
        row, url = schedule.periodic_task.crontab, CRONTABS_URL
    elif kind == "interval":
        schedule = make_schedule(schedule_type="interval", interval_seconds=900)
        row, url = schedule.periodic_task.interval, "/admin/django_celery_beat/intervalschedule/"
    else:
        schedule = make_schedule()
        row, url = schedule.periodic_task, PERIODIC_TASKS_URL
    single = admin_client.post(f"{url}{row.pk}/delete/", {"post": "yes"})
    bulk = admin_client.post(url, _action("delete_selected", [row], post="yes"))
    for response in (single, bulk):
        assert response.status_code == HTTPStatus.OK
        page = response.content.decode()
        assert "would require deleting the following protected related objects" in page
        assert "web-app / fetch_logs" in page
    assert (TaskSchedule.objects.count(), PeriodicTask.objects.count()) == (1, 1)
    assert CrontabSchedule.objects.count() + IntervalSchedule.objects.count() == 1


def test_beat_timing_rows_used_by_schedules_are_read_only(admin_client, make_schedule):
    """Editing a shared crontab would change service schedules behind the write path: view only."""
    row = make_schedule().periodic_task.crontab
    page = admin_client.get(f"{CRONTABS_URL}{row.pk}/change/")
    assert page.status_code == HTTPStatus.OK
    assert page.context["has_change_permission"] is False
    assert "Managed by luffy-admin" in _messages(page)[0]
    response = admin_client.post(f"{CRONTABS_URL}{row.pk}/change/", _crontab_post(minute="5"))
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert CrontabSchedule.objects.get().minute == "*/15"


def test_beat_periodic_task_owned_by_a_schedule_is_view_only(admin_client, make_schedule):
    """Beat's page marks a service schedule's entry as managed, shows it read-only and refuses edits."""
    schedule = make_schedule()
    listing = admin_client.get(PERIODIC_TASKS_URL)
    assert "luffy-admin: web-app / fetch_logs" in listing.content.decode()
    page = admin_client.get(f"{PERIODIC_TASKS_URL}{schedule.periodic_task_id}/change/")
    assert page.context["has_change_permission"] is False
    response = admin_client.post(
        f"{PERIODIC_TASKS_URL}{schedule.periodic_task_id}/change/",
        {
            "name": "renamed",
            "task": "x",
            "args": "[]",
            "kwargs": "{}",
            "headers": "{}",
        },
    )
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert PeriodicTask.objects.get().name == f"luffy:web-app:{schedule.pk}"


def test_beat_actions_skip_entries_owned_by_schedules(admin_client, make_schedule):
    """Beat's bulk disable leaves service schedules alone (they are audited elsewhere) and says so."""
    owned = make_schedule().periodic_task
    interval = IntervalSchedule.objects.create(every=60, period=IntervalSchedule.SECONDS)
    other = PeriodicTask.objects.create(name="cleanup", task="demo.cleanup", interval=interval)
    response = admin_client.post(PERIODIC_TASKS_URL, _action("disable_tasks", [owned, other]))
    assert response.status_code == HTTPStatus.FOUND
    assert dict(PeriodicTask.objects.values_list("name", "enabled")) == {owned.name: True, "cleanup": False}
    assert _messages(response) == [
        "1 task skipped: Managed by luffy-admin: change it on the schedule's page, not here. "
        "Use the Schedules page's actions.",
        "1 task was successfully disabled",
    ]


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
