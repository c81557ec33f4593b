"""Every operation in schema.yml has a client method: each method below is called against a
recording transport, and the requests it sends must cover the schema's operations exactly, so an
endpoint the server adds fails here until the client has it."""

import contextlib
import re
from pathlib import Path

import httpx
import yaml

from luffy_admin_client import LuffyAdmin, LuffyAdminError

SCHEMA = yaml.safe_load((Path(__file__).resolve().parents[3] / "schema.yml").read_text())
PREFIX = "/api/v1/task-scheduling"
SCHEDULE_ID = "0d5f7b7e-8a55-4a43-9d2a-3c1e0b6f2a10"

# (method, arguments): one call per operation; PUT /schedules/{id} is the same partial update
# as PATCH, which update_schedule sends (see CALLS_ALIKE).
CALLS = [
    ("list_services", (), {}),
    ("create_service", ("web-app", "Web"), {}),
    ("get_service", ("web-app",), {}),
    ("ensure_service", ("web-app", "Web"), {}),
    ("update_service", ("web-app",), {"name": "Web"}),
    ("delete_service", ("web-app",), {}),
    ("service_schedules", ("web-app",), {}),
    ("create_schedule", ("web-app", {"task_name": "fetch_logs"}), {}),
    ("apply_schedules", ("web-app", []), {}),
    ("list_schedules", (), {}),
    ("get_schedule", (SCHEDULE_ID,), {}),
    ("update_schedule", (SCHEDULE_ID,), {"enabled": False}),
    ("delete_schedule", (SCHEDULE_ID,), {}),
    ("set_enabled", (SCHEDULE_ID, False), {}),
    ("run_schedule", (SCHEDULE_ID,), {}),
    ("history", (SCHEDULE_ID,), {}),
    ("runs", (SCHEDULE_ID,), {}),
    ("dispatches", (SCHEDULE_ID,), {}),
    ("tasks", (), {}),
    ("cron_preview", ("* * * * *",), {}),
    ("load", (), {}),
    ("health", (), {}),
]
CALLS_ALIKE = {("PUT", "/schedules/{id}"): ("PATCH", "/schedules/{id}")}


def _operations() -> set[tuple[str, str]]:
    return {
        (method.upper(), path.removeprefix(PREFIX))
        for path, operations in SCHEMA["paths"].items()
        for method in operations
    }


def _template(path: str, templates: set[str]) -> str | None:
    for template in templates:
        pattern = re.sub(r"\{[^}]+\}", "[^/]+", re.escape(template).replace(r"\{", "{").replace(r"\}", "}"))
        if re.fullmatch(pattern, path):
            return template
    return None


def test_every_schema_operation_has_a_client_method():
    sent = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append((request.method, request.url.path.removeprefix(PREFIX)))
        return httpx.Response(500, json={"detail": "recorded", "code": "recorded"})

    operations = _operations()
    templates = {path for _, path in operations}
    with LuffyAdmin("http://luffy.test", "key", retries=0, transport=httpx.MockTransport(record)) as client:
        for name, args, kwargs in CALLS:
            # Every answer is a 500, so every call raises; only the request it sent matters.
            with contextlib.suppress(LuffyAdminError):
                getattr(client, name)(*args, **kwargs)
    reached = {(method, _template(path, templates)) for method, path in sent}
    expected = {CALLS_ALIKE.get(operation, operation) for operation in operations}
    assert reached == expected
