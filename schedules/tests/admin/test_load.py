"""The "Upcoming load" admin page: linked from the index, charts as server-side SVG, busiest minutes named."""

import re
from http import HTTPStatus

import pytest
from django.contrib.auth import get_user_model

from schedules import selectors
from schedules.admin.display import utc_minute

pytestmark = pytest.mark.django_db

LOAD_URL = "/admin/schedules/taskschedule/load/"


def test_index_links_to_the_upcoming_load(admin_client):
    """The product's section lists the page."""
    html = admin_client.get("/admin/").content.decode()
    assert f'<a href="{LOAD_URL}">Upcoming load</a>' in html


def test_upcoming_load_names_the_busiest_minutes_and_draws_both_charts(admin_client, make_service, make_schedule):
    """Three services on */15 and one on H/15: the quarter hours are busiest with 3 sends each, every
    one at second 0; the charts are inline SVG with one stacked bar per task and minute."""
    for service_id in ("a", "b", "c"):
        make_schedule(make_service(service_id, service_id), cron_expression="*/15 * * * *")
    make_schedule(task_name="generate_rca", cron_expression="H/15 * * * *")
    expected = selectors.upcoming_load(hours=24, resolution="minute")

    response = admin_client.get(LOAD_URL)

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert "4 enabled schedules on 2 distinct timings" in html
    rows = re.findall(r"<tr><td>([^<]*)</td><td>(\d+)</td><td>([^<]*)</td></tr>", html)
    assert rows == [(utc_minute(bucket.at), "3", "fetch_logs 3") for bucket in expected.busiest]
    content = html.split('id="content-main"')[1]
    minute_chart = re.search(r'<div id="minute-chart"><svg .*?</svg></div>', content, re.S).group()
    second_chart = re.search(r'<div id="second-chart"><svg .*?</svg></div>', content, re.S).group()
    stacked = [task for bucket in expected.buckets for task in bucket.by_task]
    assert minute_chart.count("<rect ") == len(stacked)
    assert minute_chart.count("<title>generate_rca</title>") == stacked.count("generate_rca") >= 95
    assert second_chart.count("<rect ") == 1 and "<title>fetch_logs</title>" in second_chart
    assert "<script" not in content


def test_upcoming_load_needs_the_view_permission(client):
    """Staff without permission to view schedules are refused."""
    client.force_login(get_user_model().objects.create_user("bob", password="pw-unused", is_staff=True))
    assert client.get(LOAD_URL).status_code == HTTPStatus.FORBIDDEN
    assert LOAD_URL not in client.get("/admin/").content.decode()
