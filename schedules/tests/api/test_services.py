"""Services over HTTP: idempotent PUT, create, list, patch, delete, and refused service bodies."""

from http import HTTPStatus

import pytest
from django_celery_beat.models import PeriodicTask

from schedules.models import Service, TaskSchedule
from schedules.tests.api.helpers import BASE, REFUSAL, iso

pytestmark = pytest.mark.django_db


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
        "created_at": iso(service.created_at),
        "updated_at": iso(service.updated_at),
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


BAD_SERVICE_REQUESTS = {
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
}


@pytest.mark.parametrize(REFUSAL, list(BAD_SERVICE_REQUESTS.values()), ids=list(BAD_SERVICE_REQUESTS))
def test_bad_service_request_is_refused_and_writes_nothing(
    assert_refused, method, path, request_kwargs, status, code, error_fields
):
    """A bad service id or name gets its 4xx with `detail` and `errors`, and no write."""
    assert_refused(method, path, request_kwargs, status, code, error_fields)


def test_conflict_body_carries_the_existing_id(api, service, make_schedule):
    """A 409 names what it conflicts with as data, not only inside the sentence."""
    existing = make_schedule(cron_expression="0 * * * *")
    response = api.post(
        f"{BASE}/services/web-app/schedules", {"task_name": "fetch_logs", "cron_expression": "@hourly"}, format="json"
    )
    assert response.status_code == HTTPStatus.CONFLICT
    assert response.json() == {
        "detail": f"Service 'web-app' already has this fetch_logs schedule (id {existing.pk}).",
        "code": "conflict",
        "existing_id": str(existing.pk),
    }
    duplicate = api.post(f"{BASE}/services", {"id": "web-app", "name": "Again"}, format="json")
    assert duplicate.json() == {
        "detail": "Service 'web-app' already exists.",
        "code": "conflict",
        "existing_id": "web-app",
    }
