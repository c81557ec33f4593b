"""Response headers (Content-Security-Policy, no-store on the API) and query strings with
control characters (400 on every path, never a 500)."""

import re
from http import HTTPStatus

import pytest
from rest_framework.test import APIClient

from schedules import services
from schedules.middleware import QUERY_REFUSED
from schedules.tests.api.helpers import BASE, key_client

pytestmark = pytest.mark.django_db

POLICY = {
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
}


@pytest.fixture
def api():
    _, key = services.api_key_create(name="fastapi", scopes={"read"})
    return key_client(key)


def test_login_page_carries_the_content_security_policy(client):
    response = client.get("/admin/login/")
    assert response.status_code == HTTPStatus.OK
    assert set(response["Content-Security-Policy"].split("; ")) == POLICY


@pytest.mark.parametrize("path", ["/admin/", "/admin/schedules/taskschedule/", "/api/docs/"])
def test_admin_and_docs_pages_carry_the_content_security_policy(admin_client, path):
    response = admin_client.get(path)
    assert response.status_code == HTTPStatus.OK
    assert set(response["Content-Security-Policy"].split("; ")) == POLICY


def test_docs_page_scripts_are_all_files_of_this_site(admin_client):
    """No inline script (the policy allows none): Swagger UI and its init script load as files
    from this site, and the init script points at the schema."""
    page = admin_client.get("/api/docs/").text
    tags = re.findall(r"<script([^>]*)>(.*?)</script>", page, flags=re.S)
    sources = [re.search(r'src="([^"]+)"', attributes).group(1) for attributes, _ in tags]
    assert [body.strip() for _, body in tags] == ["", "", ""]
    assert sources == [
        "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js",
        "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-standalone-preset.js",
        "/api/docs/?script=",
    ]
    script = admin_client.get(sources[2])
    assert script.status_code == HTTPStatus.OK
    assert script["Content-Type"] == "application/javascript"
    assert 'url: "/api/schema"' in script.text


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/tasks", HTTPStatus.OK),
        ("/services/missing", HTTPStatus.NOT_FOUND),
        ("/health", HTTPStatus.OK),
    ],
)
def test_api_responses_are_not_stored(api, path, status):
    """Answers and errors alike: Cache-Control no-store."""
    response = api.get(BASE + path)
    assert response.status_code == status
    assert response["Cache-Control"] == "no-store"


def test_unauthenticated_api_errors_are_not_stored():
    response = APIClient().get(f"{BASE}/services")
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "path",
    [
        "/admin/schedules/taskschedule/?service__id__exact=%00",
        "/admin/schedules/auditevent/?action=%00",
        "/admin/schedules/service/?q=%1b%5b31m",
    ],
)
def test_admin_filters_with_control_characters_answer_400(admin_client, path):
    response = admin_client.get(path)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.text == QUERY_REFUSED


@pytest.mark.parametrize(
    ("query", "body"),
    [
        (
            "service=%00",
            {
                "detail": "service: Control characters are not allowed.",
                "code": "invalid",
                "errors": {"service": ["Control characters are not allowed."]},
            },
        ),
        (
            "task_name=fetch%07logs&enabled=%1b",
            {
                "detail": "task_name: Control characters are not allowed. enabled: Control characters are not allowed.",
                "code": "invalid",
                "errors": {
                    "task_name": ["Control characters are not allowed."],
                    "enabled": ["Control characters are not allowed."],
                },
            },
        ),
        (
            "enabled%00=true",
            {
                "detail": "Control characters are not allowed.",
                "code": "invalid",
                "errors": {"non_field_errors": ["Control characters are not allowed."]},
            },
        ),
    ],
)
def test_api_lists_with_control_characters_answer_400_json(api, query, body):
    response = api.get(f"{BASE}/schedules?{query}")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json() == body
