"""The committed OpenAPI schema matches the code, and its docs page renders."""

from http import HTTPStatus
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import call_command
from openapi_spec_validator import validate
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

SCHEMA = Path(settings.BASE_DIR) / "schema.yml"
REGENERATE = "python manage.py spectacular --file schema.yml --fail-on-warn"


def test_committed_schema_matches_the_code(tmp_path):
    """Regenerating the schema changes nothing (else run the command in the message)."""
    generated = tmp_path / "schema.yml"
    call_command("spectacular", "--file", str(generated), "--fail-on-warn")
    assert generated.read_text() == SCHEMA.read_text(), f"schema.yml is stale; regenerate it: {REGENERATE}"


def test_docs_page_renders_for_staff(admin_client, settings):
    """/api/docs/ serves Swagger UI (self-hosted assets) pointing at the schema."""
    # The manifest storage needs `collectstatic` (make run and the image do it); tests have none.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    response = admin_client.get("/api/docs/")
    assert response.status_code == HTTPStatus.OK
    page = response.content.decode()
    assert '<div id="swagger-ui">' in page and '<script src="/api/docs/?script="></script>' in page
    assert "cdn.jsdelivr.net" not in page
    assert 'url: "/api/schema"' in admin_client.get("/api/docs/?script=").content.decode()


def test_schema_is_served_to_staff(admin_client):
    """The schema the docs page loads is the OpenAPI 3 document of the API."""
    response = admin_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == HTTPStatus.OK
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/task-scheduling/services/{service_id}/schedules" in schema["paths"]


@pytest.mark.parametrize("path", ["/api/docs/", "/api/schema/"])
def test_docs_and_schema_refuse_anonymous_callers(path):
    """Like the API itself, its description needs a staff login or an API key."""
    assert APIClient().get(path).status_code == HTTPStatus.UNAUTHORIZED


def test_committed_schema_is_valid_openapi():
    """openapi-spec-validator accepts schema.yml (what generators such as openapi-python-client read)."""
    validate(yaml.safe_load(SCHEMA.read_text()))


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_every_authenticated_operation_declares_401_and_403():
    """A generated client maps a bad key to an error, not to an unexpected status."""
    schema = yaml.safe_load(SCHEMA.read_text())
    missing = [
        (method, path)
        for path, method, operation in _operations(schema)
        if operation.get("security") and not {"401", "403"} <= set(operation["responses"])
    ]
    assert missing == []


def test_every_operation_taking_an_idempotency_key_declares_its_errors():
    """A malformed key is a 400 and a key reused with another body a 422, on every such operation."""
    schema = yaml.safe_load(SCHEMA.read_text())
    missing = [
        (method, path)
        for path, method, operation in _operations(schema)
        if any(parameter["name"] == "Idempotency-Key" for parameter in operation.get("parameters", []))
        and not {"400", "422"} <= set(operation["responses"])
    ]
    assert missing == []


def test_token_scheme_is_documented_for_generated_clients():
    """The security scheme says the header is `Authorization: Token <key>`."""
    scheme = yaml.safe_load(SCHEMA.read_text())["components"]["securitySchemes"]["apiKey"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "Authorization")
    assert "`Authorization: Token <key>`" in scheme["description"]
