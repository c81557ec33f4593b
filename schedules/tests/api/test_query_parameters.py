"""Query parameters: a name an endpoint does not take is refused with a 400 naming it; the
documented ones (filters, page, page_size, the preview's and toggle's) keep working."""

from http import HTTPStatus

import pytest

from schedules.tests.api.helpers import BASE

pytestmark = pytest.mark.django_db

PAGES = "page, page_size"
LISTS = [
    ("/schedules", f"service, task_name, enabled, {PAGES}"),
    ("/services", PAGES),
    ("/services/web-app/schedules", None),
    ("/schedules/{id}/history", PAGES),
    ("/schedules/{id}/dispatches", None),
    ("/tasks", None),
]


def _refusal(names: list[str], accepted: str | None) -> dict:
    hint = f"accepted: {accepted}." if accepted else "this endpoint takes none."
    return {
        "detail": f"Unknown query parameter(s): {', '.join(names)}.",
        "code": "invalid",
        "errors": {name: [f"Unknown query parameter; {hint}"] for name in names},
    }


@pytest.mark.parametrize("name", ["schedule_type", "ordering", "search"])
@pytest.mark.parametrize(("path", "accepted"), LISTS, ids=[path for path, _ in LISTS])
def test_unknown_query_parameter_on_a_list_is_a_400_naming_it(api, schedule, path, accepted, name):
    """A filter or ordering a list does not have is refused, not silently ignored."""
    response = api.get(BASE + path.format(id=schedule.pk), {name: "x"})
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json() == _refusal([name], accepted)


def test_unknown_names_are_all_named_before_any_value_is_checked(api, schedule):
    """Several unknown names are listed together (sorted); known ones beside them are not judged yet."""
    response = api.get(f"{BASE}/schedules", {"search": "x", "enabled": "maybe", "ordering": "-id"})
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json() == _refusal(["ordering", "search"], f"service, task_name, enabled, {PAGES}")


@pytest.mark.parametrize(
    ("method", "path", "name", "accepted"),
    [
        (
            "GET",
            "/cron/preview?expression=0+9+*+*+*&tz=Europe/Paris",
            "tz",
            "expression, timezone, count, service_id, task_name, key",
        ),
        ("POST", "/schedules/{id}/toggle?enable=false", "enable", "enabled"),
    ],
    ids=["preview", "toggle"],
)
def test_misspelt_parameter_is_refused_rather_than_ignored(api, schedule, method, path, name, accepted):
    """`?tz=` once previewed in UTC and `?enable=` asked for a body: both now say what is wrong."""
    response = api.generic(method, BASE + path.format(id=schedule.pk))
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json() == _refusal([name], accepted)
    assert schedule.periodic_task.enabled is True


def test_documented_query_parameters_keep_working(api, schedule, make_schedule):
    """Filters, page, page_size (and DRF's ?format=json) on lists; the preview's and toggle's own."""
    make_schedule(cron_expression="0 * * * *")
    listed = api.get(
        f"{BASE}/schedules",
        {"service": "web-app", "task_name": "fetch_logs", "enabled": "true", "page_size": 1, "format": "json"},
    )
    assert listed.status_code == HTTPStatus.OK
    assert (listed.json()["count"], len(listed.json()["results"])) == (2, 1)
    assert api.get(listed.json()["next"]).status_code == HTTPStatus.OK
    assert api.get(f"{BASE}/services", {"page": 1, "page_size": 10}).status_code == HTTPStatus.OK
    assert api.get(f"{BASE}/schedules/{schedule.pk}/history", {"page": 1}).status_code == HTTPStatus.OK
    preview = api.get(f"{BASE}/cron/preview", {"expression": "0 9 * * *", "timezone": "Europe/Paris", "count": 1})
    assert preview.status_code == HTTPStatus.OK
    assert api.post(f"{BASE}/schedules/{schedule.pk}/toggle?enabled=false").status_code == HTTPStatus.OK


def test_page_parameters_are_not_taken_where_nothing_is_paginated(api, schedule):
    """The bare-array list of a service's schedules has no pages, so `page` is unknown there."""
    response = api.get(f"{BASE}/services/web-app/schedules", {"page": 2})
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json() == _refusal(["page"], None)
