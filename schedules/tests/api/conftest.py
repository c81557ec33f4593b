"""Fixtures the API tests share: authenticated clients, a schedule, and the refusal check."""

import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient
from rest_framework_api_key.models import APIKey

from schedules import services
from schedules.models import ApiKeyScope
from schedules.tests.api.helpers import BASE, database_state, key_client, send


@pytest.fixture
def api_key():
    """A key with every scope, as the FastAPI stack's."""
    _, key = services.api_key_create(name="fastapi", scopes=set(ApiKeyScope.NAMES))
    return key


@pytest.fixture
def api(api_key):
    """A client authenticated as the FastAPI stack is: `Authorization: Token <key>`."""
    return key_client(api_key)


@pytest.fixture
def staff_user():
    """An operator: staff with every permission on services and schedules."""
    user = get_user_model().objects.create_user("alice", password="unused-in-tests", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="schedules"))
    return user


@pytest.fixture
def staff(staff_user):
    client = APIClient()
    client.force_login(staff_user)
    return client


@pytest.fixture
def schedule(make_schedule):
    return make_schedule(cron_expression="*/15 * * * *")


def _client_for(auth, default):
    """``"default"``: the API-key client; None: anonymous; ``"revoked"``: a revoked key;
    ``"non-staff"``: a logged-in user who is not staff; else the Authorization header to send."""
    if auth == "default":
        return default
    client = APIClient()
    if auth == "revoked":
        api_key, key = APIKey.objects.create_key(name="old")
        api_key.revoked = True
        api_key.save()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    elif auth == "non-staff":
        client.force_login(get_user_model().objects.create_user("bob", password="unused-in-tests"))
    elif auth is not None:
        client.credentials(HTTP_AUTHORIZATION=auth)
    return client


@pytest.fixture
def assert_refused(api, make_schedule):
    """Check one bad request: its 4xx, `detail` (+ `errors` per field for validation), and no write.

    ``path`` may name ``{schedule}`` and ``{other}`` (two existing schedules of web-app) and
    ``{missing}`` (a schedule id that does not exist); ``request_kwargs`` go to ``send``, with
    ``auth`` choosing the client (see ``_client_for``).
    """

    def check(method, path, request_kwargs, status, code, error_fields):
        request_kwargs = dict(request_kwargs)
        client = _client_for(request_kwargs.pop("auth", "default"), api)
        existing = make_schedule(cron_expression="*/15 * * * *")
        other = make_schedule(cron_expression="0 * * * *")
        path = BASE + path.format(schedule=existing.pk, other=other.pk, missing=uuid.UUID(int=1))
        before = database_state()

        response = send(client, method, path, **request_kwargs)

        assert response.status_code == status, response.content
        body = response.json()
        assert isinstance(body["detail"], str) and body["detail"].strip()
        assert body["code"] == code
        if code == "conflict":
            # A conflict names what it conflicts with, for programs.
            assert set(body) == {"detail", "code", "existing_id"}
            assert isinstance(body["existing_id"], str) and body["existing_id"] in body["detail"]
        elif error_fields is None:
            assert set(body) == {"detail", "code"}
        else:
            assert set(body) == {"detail", "code", "errors"}
            assert set(body["errors"]) == error_fields
            assert all(
                isinstance(message, str) and message for messages in body["errors"].values() for message in messages
            )
            for field in error_fields - {"non_field_errors"}:
                assert field in body["detail"]
        assert database_state() == before

    return check
