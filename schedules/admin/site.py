"""The admin site itself: its titles, no navigation sidebar, and the product's section first on the index."""

from django.contrib import admin
from django.urls import reverse

admin.site.site_header = "luffy-admin"
admin.site.site_title = "luffy-admin"
admin.site.index_title = "Services and their task schedules"
# The schedules list needs the width at 1400 px: nine columns beside the filters do not fit next to
# the navigation sidebar. The index and the breadcrumbs lead everywhere the sidebar did.
admin.site.enable_nav_sidebar = False

PRODUCT_APP_LABEL = "schedules"


def product_first(app_list: list[dict]) -> list[dict]:
    """Django's alphabetical app list with this app's section moved to the top."""
    return sorted(app_list, key=lambda app: app["app_label"] != PRODUCT_APP_LABEL)  # stable: the rest keep their order


# Django's documented way to change get_app_list is an AdminSite subclass made the default site
# through an AdminConfig in INSTALLED_APPS. Wrapping the default site's method instead keeps
# ``admin.site`` the object every app registers with, and leaves settings alone.
_alphabetical_app_list = admin.site.get_app_list


def _with_upcoming_load(request, app_list: list[dict]) -> list[dict]:
    """The "Upcoming load" page listed in the product's section, for those who may view schedules."""
    if not request.user.has_perm("schedules.view_taskschedule"):
        return app_list
    for app in app_list:
        if app["app_label"] == PRODUCT_APP_LABEL:
            app["models"].append(
                {
                    "name": "Upcoming load",
                    "object_name": "UpcomingLoad",
                    "admin_url": reverse("admin:schedules_taskschedule_load"),
                    "add_url": None,
                    "view_only": True,
                    "perms": {"view": True},
                }
            )
    return app_list


def _get_app_list(request, app_label=None):
    return product_first(_with_upcoming_load(request, _alphabetical_app_list(request, app_label)))


admin.site.get_app_list = _get_app_list
