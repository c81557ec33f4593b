"""The site around the admin and the API: its front page and its icon."""

from http import HTTPStatus
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders

pytestmark = pytest.mark.django_db


def test_front_page_links_the_admin_the_api_docs_and_health(client):
    response = client.get("/")
    assert response.status_code == HTTPStatus.OK
    page = response.content.decode()
    for link in ('href="/admin/"', 'href="/api/docs"', 'href="/api/v1/task-scheduling/health"'):
        assert link in page
    assert 'rel="icon" href="/static/favicon.svg"' in page


def test_favicon_is_served(client):
    """/favicon.ico leads to the icon, which collectstatic (make run, the image) publishes."""
    response = client.get("/favicon.ico")
    assert (response.status_code, response["Location"]) == (HTTPStatus.FOUND, "/static/favicon.svg")
    assert Path(finders.find("favicon.svg")).read_text().startswith("<svg")


def test_admin_pages_carry_the_icon_and_view_site_goes_to_the_front_page(admin_client):
    page = admin_client.get("/admin/").content.decode()
    assert 'rel="icon" href="/static/favicon.svg"' in page
    assert '<a href="/">View site</a>' in page
