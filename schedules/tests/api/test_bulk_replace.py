"""PUT /services/{id}/schedules: replace the service's set in one transaction, with a diff."""

from http import HTTPStatus

import pytest

from schedules.models import AuditEvent, TaskSchedule
from schedules.tests.api.helpers import BASE, database_state, expected_body

pytestmark = pytest.mark.django_db

URL = f"{BASE}/services/web-app/schedules"
THREE = [
    {"task_name": "fetch_logs", "cron_expression": "*/15 * * * *", "key": "logs"},
    {"task_name": "generate_rca", "cron_expression": "@hourly"},
    {"task_name": "index_code", "schedule_type": "interval", "interval_seconds": 86400, "enabled": False},
]


def _state(task_name, *, cron=None, interval=None, timezone="UTC", enabled=True, key=None):
    return {
        "task_name": task_name,
        "schedule_type": "cron" if cron else "interval",
        "cron_expression": cron,
        "interval_seconds": interval,
        "jitter_seconds": None,
        "timezone": timezone,
        "enabled": enabled,
        "key": key,
    }


LOGS = _state("fetch_logs", cron="*/15 * * * *", key="logs")
RCA = _state("generate_rca", cron="0 * * * *")
INDEX = _state("index_code", interval=86400, enabled=False)


def _schedules_of(body):
    """The answer's schedules, each checked against the database independently of the view."""
    return [
        expected_body(row["id"], next_run=row["next_run"], description=row["description"]) for row in body["schedules"]
    ]


def test_replace_creates_the_set_and_answers_the_diff(api, service):
    """An empty service gets the three schedules; the answer lists them, each change and the counts."""
    response = api.put(URL, THREE, format="json")

    assert response.status_code == HTTPStatus.OK
    body = response.json()
    ids = {row["task_name"]: row["id"] for row in body["schedules"]}
    assert body == {
        "dry_run": False,
        "summary": {"created": 3, "updated": 0, "deleted": 0, "unchanged": 0},
        "changes": [
            {"action": "created", "schedule_id": ids["fetch_logs"], "before": None, "after": LOGS},
            {"action": "created", "schedule_id": ids["generate_rca"], "before": None, "after": RCA},
            {"action": "created", "schedule_id": ids["index_code"], "before": None, "after": INDEX},
        ],
        "schedules": _schedules_of(body),
    }
    assert [row["key"] for row in body["schedules"]] == ["logs", None, None]
    assert AuditEvent.objects.filter(action="create", target="schedule").count() == 3


def test_replace_twice_changes_nothing(api, service):
    """The same list again: all unchanged, no write, no audit event (a GET's output sent back too)."""
    api.put(URL, THREE, format="json")
    before = database_state()

    again = api.put(URL, THREE, format="json").json()
    echoed = api.put(URL, api.get(URL).json(), format="json").json()

    assert again["summary"] == echoed["summary"] == {"created": 0, "updated": 0, "deleted": 0, "unchanged": 3}
    assert [change["action"] for change in again["changes"]] == ["unchanged"] * 3
    assert database_state() == before


def test_replace_updates_by_key_deletes_the_rest_and_matches_by_timing(api, service):
    """The keyed schedule is updated in place (same id), an unkeyed match stays, the unnamed one goes."""
    first = {row["task_name"]: row for row in api.put(URL, THREE, format="json").json()["schedules"]}
    desired = [
        {"task_name": "fetch_logs", "cron_expression": "0 */2 * * *", "timezone": "Europe/Paris", "key": "logs"},
        {"task_name": "generate_rca", "cron_expression": "0 * * * *"},
    ]

    body = api.put(URL, desired, format="json").json()

    logs_after = _state("fetch_logs", cron="0 */2 * * *", timezone="Europe/Paris", key="logs")
    assert body["summary"] == {"created": 0, "updated": 1, "deleted": 1, "unchanged": 1}
    assert body["changes"] == [
        {"action": "deleted", "schedule_id": first["index_code"]["id"], "before": INDEX, "after": None},
        {"action": "updated", "schedule_id": first["fetch_logs"]["id"], "before": LOGS, "after": logs_after},
        {"action": "unchanged", "schedule_id": first["generate_rca"]["id"], "before": RCA, "after": RCA},
    ]
    assert [row["id"] for row in body["schedules"]] == [first["fetch_logs"]["id"], first["generate_rca"]["id"]]
    assert body["schedules"] == _schedules_of(body)
    assert not TaskSchedule.objects.filter(pk=first["index_code"]["id"]).exists()
    audited = AuditEvent.objects.filter(action__in=["update", "delete"]).values_list("action", "schedule_id")
    assert sorted((action, str(pk)) for action, pk in audited) == [
        ("delete", first["index_code"]["id"]),
        ("update", first["fetch_logs"]["id"]),
    ]


def test_replace_without_prune_keeps_unnamed_schedules(api, service):
    """?prune=false: stored schedules the list does not name stay, counted unchanged."""
    api.put(URL, THREE, format="json")
    body = api.put(f"{URL}?prune=false", THREE[:1], format="json").json()
    assert body["summary"] == {"created": 0, "updated": 0, "deleted": 0, "unchanged": 3}
    assert TaskSchedule.objects.count() == 3


def test_dry_run_answers_the_diff_and_writes_nothing(api, service):
    """?dry_run=true: the same summary and changes a real replace would give, nothing stored."""
    before = database_state()
    body = api.put(f"{URL}?dry_run=true", THREE, format="json").json()
    assert body == {
        "dry_run": True,
        "summary": {"created": 3, "updated": 0, "deleted": 0, "unchanged": 0},
        "changes": [
            {"action": "created", "schedule_id": None, "before": None, "after": LOGS},
            {"action": "created", "schedule_id": None, "before": None, "after": RCA},
            {"action": "created", "schedule_id": None, "before": None, "after": INDEX},
        ],
        "schedules": [],
    }
    assert database_state() == before


def test_a_dry_run_for_a_service_not_created_yet_checks_everything_and_writes_nothing(api):
    """The answer a dry run gives once the service exists; a schedule the write would refuse is
    refused here too (400), and no service, schedule or audit event is left behind."""
    before = database_state()
    url = f"{BASE}/services/not-yet/schedules"
    body = api.put(f"{url}?dry_run=true", THREE, format="json").json()
    assert body["summary"] == {"created": 3, "updated": 0, "deleted": 0, "unchanged": 0}
    assert [change["after"] for change in body["changes"]] == [LOGS, RCA, INDEX]
    assert body["schedules"] == []
    bad = [{**THREE[0], "cron_expression": "61 * * * *"}]
    assert api.put(f"{url}?dry_run=true", bad, format="json").status_code == HTTPStatus.BAD_REQUEST
    assert database_state() == before
    assert api.put(url, THREE, format="json").status_code == HTTPStatus.NOT_FOUND


def test_replace_over_the_cap_is_refused_whole(api, service, settings):
    """The per-service cap holds for the resulting set: 409 and nothing written."""
    settings.LUFFY_MAX_SCHEDULES_PER_SERVICE = 2
    before = database_state()
    response = api.put(URL, THREE, format="json")
    assert response.status_code == HTTPStatus.CONFLICT
    assert response.json() == {
        "detail": "Service 'web-app' would have 3 schedules; one service may have at most 2 "
        "(LUFFY_MAX_SCHEDULES_PER_SERVICE).",
        "code": "conflict",
    }
    assert database_state() == before


BAD_LISTS = {
    "not an array": (
        {"task_name": "fetch_logs"},
        {"non_field_errors": ["Expected a JSON array of schedules, got an object."]},
    ),
    "unknown field in an item": (
        [THREE[0], {**THREE[1], "task_path": "os.system", "colour": "red"}],
        {
            "[1].colour": [
                "Unknown field; accepted fields are: task_name, schedule_type, cron_expression, "
                "interval_seconds, jitter_seconds, timezone, enabled, key."
            ]
        },
    ),
    "bad cron in an item": (
        [THREE[0], {"task_name": "generate_rca", "cron_expression": "61 * * * *"}],
        {"[1].cron_expression": ["minute: 61 is out of range 0-59."]},
    ),
    "the same schedule twice": (
        [THREE[1], {"task_name": "generate_rca", "cron_expression": "0 * * * *"}],
        {"[1]": ["The same schedule as [0]; list it once."]},
    ),
    "a key twice": (
        [THREE[0], {**THREE[1], "key": "logs"}],
        {"[1].key": ["Key 'logs' is also [0]'s."]},
    ),
    "a malformed key": (
        [{**THREE[0], "key": "no spaces"}],
        {
            "[0].key": [
                "A schedule key is 1-100 characters: letters, digits, '.', '-' and '_', starting with a "
                "letter or digit."
            ]
        },
    ),
}


@pytest.mark.parametrize(("body", "errors"), list(BAD_LISTS.values()), ids=list(BAD_LISTS))
def test_bad_list_is_refused_naming_the_item_and_writes_nothing(api, service, body, errors):
    """Errors name the item by its place in the list; nothing of the list is written."""
    api.put(URL, THREE[:1], format="json")
    before = database_state()
    response = api.put(URL, body, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json() == {
        "detail": " ".join(
            message if field == "non_field_errors" else f"{field}: {message}"
            for field, messages in errors.items()
            for message in messages
        ),
        "code": "invalid",
        "errors": errors,
    }
    assert database_state() == before


def test_replace_of_an_unknown_service_is_404(api):
    response = api.put(f"{BASE}/services/nope/schedules", THREE, format="json")
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response.json() == {"detail": "Service not found", "code": "not_found"}


def test_a_key_is_adopted_by_the_schedule_with_the_same_timing(api, make_schedule):
    """An unkeyed schedule matching a keyed item by task and timing takes the key (same id, updated)."""
    existing = make_schedule(cron_expression="*/15 * * * *")
    body = api.put(URL, THREE[:1], format="json").json()
    assert body["changes"] == [
        {"action": "updated", "schedule_id": str(existing.pk), "before": {**LOGS, "key": None}, "after": LOGS}
    ]
    assert TaskSchedule.objects.get().key == "logs"


def test_key_is_set_cleared_and_unique_through_patch(api, make_schedule):
    """PATCH sets or clears a key; another schedule's key is a 409 naming that schedule."""
    first, second = make_schedule(cron_expression="0 * * * *"), make_schedule(cron_expression="0 2 * * *")
    assert api.patch(f"{BASE}/schedules/{first.pk}", {"key": "hourly"}, format="json").json()["key"] == "hourly"
    taken = api.patch(f"{BASE}/schedules/{second.pk}", {"key": "hourly"}, format="json")
    assert taken.status_code == HTTPStatus.CONFLICT
    assert taken.json() == {
        "detail": f"Service 'web-app' already has a schedule with key 'hourly' (id {first.pk}).",
        "code": "conflict",
        "existing_id": str(first.pk),
    }
    assert api.patch(f"{BASE}/schedules/{first.pk}", {"key": None}, format="json").json()["key"] is None
