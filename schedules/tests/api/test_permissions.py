"""Authorization: staff sessions need the admin's model permissions, API keys their scopes."""

from http import HTTPStatus
from importlib import import_module
from io import StringIO

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient
from rest_framework_api_key.models import APIKey

from schedules import services
from schedules.models import ApiKeyScope
from schedules.tests.api.helpers import BASE, database_state, key_client, send

pytestmark = pytest.mark.django_db

NEW_SCHEDULE = {"task_name": "generate_rca", "cron_expression": "0 3 * * *"}
# method, path ({schedule}: an existing schedule of web-app), body, the permissions it needs,
# the scope an API key needs, and the answer once allowed.
REQUESTS = {
    "list services": ("GET", "/services", None, ["view_service"], "read", HTTPStatus.OK),
    "create service": ("POST", "/services", {"id": "new", "name": "New"}, ["add_service"], "write", HTTPStatus.CREATED),
    "put service": (
        "PUT",
        "/services/web-app",
        {"name": "W"},
        ["add_service", "change_service"],
        "write",
        HTTPStatus.OK,
    ),
    "patch service": ("PATCH", "/services/web-app", {"name": "W"}, ["change_service"], "write", HTTPStatus.OK),
    "delete service": ("DELETE", "/services/web-app", None, ["delete_service"], "write", HTTPStatus.OK),
    "service schedules": ("GET", "/services/web-app/schedules", None, ["view_taskschedule"], "read", HTTPStatus.OK),
    "create schedule": (
        "POST",
        "/services/web-app/schedules",
        NEW_SCHEDULE,
        ["add_taskschedule"],
        "write",
        HTTPStatus.CREATED,
    ),
    "list schedules": ("GET", "/schedules", None, ["view_taskschedule"], "read", HTTPStatus.OK),
    "history": ("GET", "/schedules/{schedule}/history", None, ["view_taskschedule"], "read", HTTPStatus.OK),
    "update schedule": (
        "PATCH",
        "/schedules/{schedule}",
        {"enabled": False},
        ["change_taskschedule"],
        "write",
        HTTPStatus.OK,
    ),
    "toggle": (
        "POST",
        "/schedules/{schedule}/toggle?enabled=false",
        None,
        ["change_taskschedule"],
        "write",
        HTTPStatus.OK,
    ),
    "delete schedule": ("DELETE", "/schedules/{schedule}", None, ["delete_taskschedule"], "write", HTTPStatus.OK),
    "run": ("POST", "/schedules/{schedule}/run", None, ["run_schedule"], "run", HTTPStatus.ACCEPTED),
    "tasks": ("GET", "/tasks", None, ["view_taskschedule"], "read", HTTPStatus.OK),
    "cron preview": ("GET", "/cron/preview?expression=0+*+*+*+*", None, ["view_taskschedule"], "read", HTTPStatus.OK),
}
FIELDS = ("method", "path", "body", "permissions", "scope", "allowed_status")


def _call(client, method, path, body, schedule):
    return send(client, method, BASE + path.format(schedule=schedule.pk), json_body=body)


def _staff_client(*codenames) -> APIClient:
    user = get_user_model().objects.create_user("carol", password="unused-in-tests", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="schedules", codename__in=codenames))
    client = APIClient()
    client.force_login(user)
    return client


def _key_client(*scopes) -> APIClient:
    _, key = services.api_key_create(name="scoped", scopes=set(scopes))
    return key_client(key)


@pytest.mark.parametrize(FIELDS, list(REQUESTS.values()), ids=list(REQUESTS))
def test_staff_without_the_model_permission_gets_403_naming_it(
    schedule, method, path, body, permissions, scope, allowed_status
):
    """A staff session holding every other permission is refused, told which it lacks, and writes nothing."""
    others = Permission.objects.filter(content_type__app_label="schedules").exclude(codename__in=permissions)
    client = _staff_client(*others.values_list("codename", flat=True))
    before = database_state()

    response = _call(client, method, path, body, schedule)

    assert response.status_code == HTTPStatus.FORBIDDEN
    needed = ", ".join(f"'schedules.{codename}'" for codename in permissions)
    assert response.json() == {
        "detail": f"You lack the permission this request needs: {needed}.",
        "code": "permission_denied",
    }
    assert database_state() == before


@pytest.mark.parametrize(FIELDS, list(REQUESTS.values()), ids=list(REQUESTS))
def test_staff_with_just_the_model_permission_is_allowed(
    schedule, method, path, body, permissions, scope, allowed_status
):
    """Exactly the permissions the admin would ask for are enough."""
    response = _call(_staff_client(*permissions), method, path, body, schedule)
    assert response.status_code == allowed_status, response.content


@pytest.mark.parametrize(FIELDS, list(REQUESTS.values()), ids=list(REQUESTS))
def test_api_key_without_the_scope_gets_403_naming_it(schedule, method, path, body, permissions, scope, allowed_status):
    """A key with every other scope is refused and told which scope the request needs; no write."""
    # write implies read, so a key refused "read" holds run only.
    others = {"run"} if scope == "read" else set(ApiKeyScope.NAMES) - {scope}
    before = database_state()

    response = _call(_key_client(*others), method, path, body, schedule)

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert response.json() == {
        "detail": f"This API key lacks the scope this request needs: '{scope}'.",
        "code": "permission_denied",
    }
    assert database_state()["services"] == before["services"]
    assert database_state()["schedules"] == before["schedules"]
    assert database_state()["audit_events"] == before["audit_events"]


@pytest.mark.parametrize(FIELDS, list(REQUESTS.values()), ids=list(REQUESTS))
def test_api_key_with_just_the_scope_is_allowed(schedule, method, path, body, permissions, scope, allowed_status):
    """The one scope the request needs is enough."""
    response = _call(_key_client(scope), method, path, body, schedule)
    assert response.status_code == allowed_status, response.content


def test_write_scope_implies_read_but_not_run(schedule):
    """A write key reads; it cannot send a task now."""
    client = _key_client("write")
    assert client.get(f"{BASE}/schedules/{schedule.pk}").status_code == HTTPStatus.OK
    response = client.post(f"{BASE}/schedules/{schedule.pk}/run")
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert response.json() == {
        "detail": "This API key lacks the scope this request needs: 'run'.",
        "code": "permission_denied",
    }


def test_api_key_without_a_scope_row_may_do_nothing(service):
    """A key made outside `manage.py api_key` (the library's own admin) has no scopes."""
    _, key = APIKey.objects.create_key(name="bare")
    response = key_client(key).get(f"{BASE}/services")
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert response.json() == {
        "detail": "This API key lacks the scope this request needs: 'read'.",
        "code": "permission_denied",
    }


@pytest.mark.parametrize(
    ("arguments", "shown"),
    [
        ([], "read"),
        (["--scope", "write"], "read,write"),
        (["--scope", "read", "--scope", "run"], "read,run"),
        (["--scope", "write,run"], "read,write,run"),
    ],
)
def test_api_key_command_sets_scopes_and_lists_them(arguments, shown):
    """`--scope` repeats or takes a comma list; the default is read; `list` shows the scopes."""
    out = StringIO()
    call_command("api_key", "create", "fastapi", *arguments, stdout=out)
    prefix = out.getvalue().splitlines()[-1].split(".")[0]
    assert f"with scopes {shown}." in out.getvalue()
    assert str(APIKey.objects.get(prefix=prefix).scope) == shown

    listed = StringIO()
    call_command("api_key", "list", stdout=listed)
    (line,) = listed.getvalue().splitlines()
    assert line.split()[0] == prefix and line.split()[-2:] == [shown, "fastapi"]


def test_api_key_command_refuses_an_unknown_scope():
    with pytest.raises(CommandError, match="Scopes are read, write, run; got admin."):
        call_command("api_key", "create", "fastapi", "--scope", "read,admin", stdout=StringIO())
    assert not APIKey.objects.exists()


def test_keys_made_before_scopes_keep_full_rights():
    """The data migration gives every existing key read, write and run."""
    api_key, _ = APIKey.objects.create_key(name="old")
    migration = import_module("schedules.migrations.0008_api_key_scopes_and_run_permission")
    migration.existing_keys_keep_full_rights(apps, schema_editor=None)
    assert str(APIKey.objects.get(pk=api_key.pk).scope) == "read,write,run"


def test_api_key_admin_shows_and_edits_scopes(admin_client):
    """The key list has a scopes column; a key's page has the scope inline."""
    api_key, _ = services.api_key_create(name="fastapi", scopes={"write"})
    listing = admin_client.get("/admin/rest_framework_api_key/apikey/")
    assert listing.status_code == HTTPStatus.OK
    assert '<td class="field-scopes">read,write</td>' in listing.text
    page = admin_client.get(f"/admin/rest_framework_api_key/apikey/{api_key.pk}/change/")
    assert 'name="scope-0-run"' in page.text


@pytest.mark.parametrize(
    ("ticked", "shown"), [({}, "read"), ({"scope-0-write": "on", "scope-0-run": "on"}, "read,write,run")]
)
def test_api_key_added_in_the_admin_gets_the_scopes_ticked(admin_client, ticked, shown):
    """The inline as offered (read) or with more ticked: the key gets exactly that."""
    form = {
        "name": "dashboards",
        "scope-TOTAL_FORMS": "1",
        "scope-INITIAL_FORMS": "0",
        "scope-MIN_NUM_FORMS": "1",
        "scope-MAX_NUM_FORMS": "1",
        "scope-0-read": "on",
        **ticked,
    }
    response = admin_client.post("/admin/rest_framework_api_key/apikey/add/", form)
    assert response.status_code == HTTPStatus.FOUND, response.content
    assert str(APIKey.objects.get(name="dashboards").scope) == shown
