"""Authentication: API keys (either scheme, the management command), staff sessions, and refused credentials."""

from http import HTTPStatus
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient
from rest_framework_api_key.models import APIKey

from schedules.models import AuditEvent
from schedules.tests.api.helpers import BASE, CREATE, REFUSAL, key_client

pytestmark = pytest.mark.django_db


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
    assert key_client(key).get(f"{BASE}/tasks").status_code == HTTPStatus.OK

    with pytest.raises(CommandError, match="exists"):
        call_command("api_key", "create", "fastapi", stdout=StringIO())

    listed = StringIO()
    call_command("api_key", "list", stdout=listed)
    assert prefix in listed.getvalue() and "active" in listed.getvalue()

    call_command("api_key", "revoke", prefix, stdout=StringIO())
    response = key_client(key).get(f"{BASE}/tasks")
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json() == {"detail": "Invalid API key.", "code": "authentication_failed"}
    with pytest.raises(CommandError, match="No API key"):
        call_command("api_key", "revoke", "nope", stdout=StringIO())


BAD_CREDENTIALS = {
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


@pytest.mark.parametrize(REFUSAL, list(BAD_CREDENTIALS.values()), ids=list(BAD_CREDENTIALS))
def test_refused_credentials_get_a_clear_body_and_write_nothing(
    assert_refused, method, path, request_kwargs, status, code, error_fields
):
    """Missing, wrong, malformed, revoked or non-staff credentials: 401/403 with `detail`, and no write."""
    assert_refused(method, path, request_kwargs, status, code, error_fields)


@pytest.mark.parametrize("header", ["Bearer abc.def", "Basic dXNlcjpwYXNz"])
def test_unknown_scheme_401_names_the_accepted_schemes(service, header):
    """A generated client's default `Bearer` is told what to send instead, not that nothing was sent."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get(f"{BASE}/services")
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    scheme = header.split()[0]
    assert response.json() == {
        "detail": f"The Authorization scheme '{scheme}' is not accepted; send 'Authorization: Token <key>' "
        "(or 'Api-Key <key>').",
        "code": "not_authenticated",
    }
    assert response["WWW-Authenticate"] == "Token"
