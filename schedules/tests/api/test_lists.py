"""Lists: a constant number of queries, pagination, and the `/schedules` filters."""

from http import HTTPStatus

import pytest

from schedules import services
from schedules.tests.api.helpers import BASE, REFUSAL, expected_body

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("path", "queries"),
    [
        # API key, service, its schedules (with their beat rows).
        ("/services/web-app/schedules", 3),
        # API key, count, page.
        ("/schedules", 3),
        # API key, service filter, count, page.
        ("/schedules?service=web-app&enabled=true&task_name=fetch_logs", 4),
        # API key, count, page (with schedule counts).
        ("/services", 3),
    ],
)
def test_list_runs_in_a_constant_number_of_queries(api, make_schedule, path, queries, django_assert_num_queries):
    """1 schedule or 50: the same queries, so a page never costs one query per row."""
    make_schedule(cron_expression="0 * * * *")
    with django_assert_num_queries(queries):
        assert api.get(BASE + path).status_code == HTTPStatus.OK
    for minute in range(1, 50):
        make_schedule(cron_expression=f"{minute} * * * *")
    with django_assert_num_queries(queries):
        response = api.get(BASE + path)
    body = response.json()
    rows = body if isinstance(body, list) else body["results"]
    assert len(rows) == (1 if path == "/services" else 50)


def test_history_runs_in_a_constant_number_of_queries(api, actor, schedule, django_assert_num_queries):
    """History of 1 event or 50: the same queries."""
    path = f"{BASE}/schedules/{schedule.pk}/history"
    with django_assert_num_queries(4):  # API key, exists, count, page
        assert api.get(path).json()["count"] == 1
    for index in range(49):
        services.schedule_set_enabled(actor=actor, schedule=schedule, enabled=index % 2 == 1)
    with django_assert_num_queries(4):
        assert len(api.get(path).json()["results"]) == 50


def test_schedules_list_filters_and_paginates(api, make_service, make_schedule):
    """Filters narrow the list; pages follow DRF's page-number shape."""
    search = make_service("search", "Search")
    make_schedule(cron_expression="0 * * * *")
    make_schedule(task_name="index_code", cron_expression="0 3 * * *", enabled=False)
    wanted = make_schedule(target=search, cron_expression="0 * * * *")
    response = api.get(f"{BASE}/schedules?service=search")
    assert response.json() == {
        "count": 1,
        "next": None,
        "previous": None,
        "results": [
            expected_body(wanted.pk, next_run=response.json()["results"][0]["next_run"], description="Every hour")
        ],
    }
    assert [row["task_name"] for row in api.get(f"{BASE}/schedules?enabled=false").json()["results"]] == ["index_code"]
    first = api.get(f"{BASE}/schedules?page_size=2").json()
    assert (first["count"], len(first["results"])) == (3, 2)
    assert first["next"] == f"http://testserver{BASE}/schedules?page=2&page_size=2"


BAD_FILTERS = {
    "filter enabled not a boolean": (
        "GET",
        "/schedules?enabled=yes",
        {},
        HTTPStatus.BAD_REQUEST,
        "invalid",
        {"enabled"},
    ),
    "filter unknown service": ("GET", "/schedules?service=nope", {}, HTTPStatus.BAD_REQUEST, "invalid", {"service"}),
    "filter service with a NUL byte": (
        "GET",
        "/schedules?service=a%00b",
        {},
        HTTPStatus.BAD_REQUEST,
        "invalid",
        {"service"},
    ),
    "filter unknown task": ("GET", "/schedules?task_name=deploy", {}, HTTPStatus.BAD_REQUEST, "invalid", {"task_name"}),
    "page out of range": ("GET", "/schedules?page=9", {}, HTTPStatus.NOT_FOUND, "not_found", None),
}


@pytest.mark.parametrize(REFUSAL, list(BAD_FILTERS.values()), ids=list(BAD_FILTERS))
def test_bad_filter_is_refused_and_writes_nothing(
    assert_refused, method, path, request_kwargs, status, code, error_fields
):
    """A filter value that cannot match is a 400 naming it (not an empty page); a page past the end is 404."""
    assert_refused(method, path, request_kwargs, status, code, error_fields)


UNKNOWN_TASK = "is not a catalogue task; choose one of fetch_logs, generate_rca, index_code."


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("service=nope", "service", "Unknown service 'nope'."),
        ("service=", "service", "Unknown service ''."),
        ("service=Web%20App", "service", "Unknown service 'Web App'."),
        ("task_name=deploy", "task_name", f"'deploy' {UNKNOWN_TASK}"),
        ("task_name=", "task_name", f"'' {UNKNOWN_TASK}"),
        ("enabled=yes", "enabled", "enabled must be true or false."),
        ("enabled=", "enabled", "enabled must be true or false."),
    ],
)
def test_schedule_filter_value_that_cannot_match_is_a_400_naming_it(api, service, query, field, message):
    """A blank or unknown filter value is refused with the full error body, never read as "no filter"."""
    response = api.get(f"{BASE}/schedules?{query}")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json() == {"detail": f"{field}: {message}", "code": "invalid", "errors": {field: [message]}}


@pytest.mark.parametrize("value", ["false", "False", " FALSE "])
def test_enabled_filter_reads_true_or_false_in_any_case(api, make_schedule, value):
    """As the seed's callers spell it: `?enabled=False` works like `?enabled=false`."""
    make_schedule(cron_expression="0 * * * *")
    disabled = make_schedule(cron_expression="30 * * * *", enabled=False)
    response = api.get(f"{BASE}/schedules", {"enabled": value})
    assert response.status_code == HTTPStatus.OK
    assert [row["id"] for row in response.json()["results"]] == [str(disabled.pk)]


def test_a_page_past_the_end_is_a_404_saying_where_the_last_page_is(api, make_schedule):
    for minute in range(3):
        make_schedule(cron_expression=f"{minute} * * * *")
    response = api.get(f"{BASE}/schedules", {"page": 99, "page_size": 2})
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response.json() == {"detail": "Page 99 does not exist; the last page is 2.", "code": "not_found"}


def test_an_empty_list_has_its_first_page(api):
    response = api.get(f"{BASE}/schedules", {"page": 1})
    assert response.json() == {"count": 0, "next": None, "previous": None, "results": []}
    response = api.get(f"{BASE}/schedules", {"page": 2})
    assert response.json() == {"detail": "Page 2 does not exist; there is one page.", "code": "not_found"}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"page": "abc"}, {"page": ["page must be a whole number from 1."]}),
        ({"page": "0"}, {"page": ["page must be a whole number from 1."]}),
        ({"page": "٣"}, {"page": ["page must be a whole number from 1."]}),
        ({"page_size": "0"}, {"page_size": ["page_size must be a whole number from 1 to 200."]}),
        ({"page_size": "201"}, {"page_size": ["page_size must be a whole number from 1 to 200."]}),
        ({"page_size": "ten"}, {"page_size": ["page_size must be a whole number from 1 to 200."]}),
    ],
)
def test_page_parameters_that_are_not_page_numbers_are_refused(api, query, message):
    """DRF would quietly fall back to the default page size; a caller should hear about a typo."""
    response = api.get(f"{BASE}/schedules", query)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    [(field, [text])] = message.items()
    assert response.json() == {"detail": f"{field}: {text}", "code": "invalid", "errors": message}


def test_options_is_not_offered_the_schema_describes_the_api(api):
    """OPTIONS metadata used the read serializer and showed every field of a create as read-only;
    it is off, and /api/schema is the description."""
    response = api.options(f"{BASE}/services")
    assert response.status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert response.json() == {"detail": 'Method "OPTIONS" not allowed.', "code": "method_not_allowed"}
