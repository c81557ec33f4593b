"""The services pages: the list with schedule counts, a service's page with its schedules, add, edit, delete."""

from http import HTTPStatus

import pytest
from django_celery_beat.models import PeriodicTask

from schedules import selectors
from schedules.admin.display import utc_minute
from schedules.models import AuditEvent, Service, TaskSchedule

from .helpers import SCHEDULES_URL, SERVICES_URL, action_post, empty_inline, errors_on_form

pytestmark = pytest.mark.django_db


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
        utc_minute(selectors.schedule_next_run(schedule)),
        "generate_rca",
        "every 3600 s",
        "Every hour",
        utc_minute(selectors.schedule_next_run(interval)),
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
    assert errors_on_form(response) == {"id": [message]}
    assert list(Service.objects.values_list("id", "name")) == [("web-app", "Web application")]


def test_service_edit_records_before_and_after(admin_client, service):
    """Renaming a service is audited with the admin user and both values."""
    response = admin_client.post(
        f"{SERVICES_URL}web-app/change/",
        {
            "name": "Shop",
            "description": "new",
            **empty_inline("schedules"),
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
    response = admin_client.post(SERVICES_URL, action_post("delete_selected", services_, post="yes"))
    assert response.status_code == HTTPStatus.FOUND
    assert (Service.objects.count(), PeriodicTask.objects.count()) == (0, 0)
    assert AuditEvent.objects.filter(action="delete", target="service", actor="user:admin").count() == 2
