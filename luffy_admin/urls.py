"""The project's routes. The app is reached through include() strings only: nothing here imports it."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView, TemplateView

urlpatterns = [
    # A landing page linking the admin, the API docs and /health (the admin's "View site" goes here).
    path("", TemplateView.as_view(template_name="landing.html"), name="landing"),
    # Browsers ask for /favicon.ico whatever the page says; whitenoise serves the unhashed name too.
    path("favicon.ico", RedirectView.as_view(url=f"{settings.STATIC_URL}favicon.svg")),
    path("admin/", admin.site.urls),
    # /api/v1/task-scheduling/... plus the API's schema (/api/schema) and docs page (/api/docs).
    path("api/", include("schedules.api.urls")),
    # Prometheus metrics at /metrics (docs/runs.md).
    path("", include("schedules.metrics")),
]

handler404 = "schedules.api.exception_handler.page_not_found"
handler500 = "schedules.api.exception_handler.server_error"
