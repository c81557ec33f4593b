"""The admin site: the product's section comes first, and no navigation sidebar takes the lists' width."""

from http import HTTPStatus

import pytest

from schedules.admin.site import product_first

pytestmark = pytest.mark.django_db


def test_index_lists_the_product_section_first_then_django_order(admin_client):
    """The index (and available_apps, for any sidebar) opens with the schedules app; the rest keep Django's order."""
    response = admin_client.get("/admin/")
    assert response.status_code == HTTPStatus.OK
    index = [app["app_label"] for app in response.context["app_list"]]
    sidebar = [app["app_label"] for app in response.context["available_apps"]]
    assert index == sidebar == ["schedules", "rest_framework_api_key", "auth", "axes", "django_celery_beat"]
    assert [model["object_name"] for model in response.context["app_list"][0]["models"]] == [
        "AuditEvent",
        "TaskSchedule",
        "Service",
        "UpcomingLoad",
    ]


def test_pages_have_no_navigation_sidebar(admin_client):
    """The schedules list gets the page's width (the index and breadcrumbs lead everywhere)."""
    response = admin_client.get("/admin/schedules/taskschedule/")
    assert response.status_code == HTTPStatus.OK
    assert response.context["is_nav_sidebar_enabled"] is False
    assert 'id="nav-sidebar"' not in response.content.decode()


def test_one_app_page_still_lists_that_app_only(admin_client):
    """An app's own page (app_label given) is unchanged by the ordering."""
    response = admin_client.get("/admin/django_celery_beat/")
    assert response.status_code == HTTPStatus.OK
    assert [app["app_label"] for app in response.context["app_list"]] == ["django_celery_beat"]


def test_product_first_moves_only_the_product_section():
    """The rest of the list keeps its order, and a list without the product is left as it is."""
    apps = [{"app_label": label} for label in ("auth", "django_celery_beat", "schedules", "zeta")]
    assert [app["app_label"] for app in product_first(apps)] == ["schedules", "auth", "django_celery_beat", "zeta"]
    assert product_first(apps[:2]) == apps[:2]
