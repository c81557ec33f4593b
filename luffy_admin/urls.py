"""The project's routes. The app is reached through include() strings only: nothing here imports it."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    # /api/v1/task-scheduling/... plus the API's schema (/api/schema) and docs page (/api/docs).
    path("api/", include("schedules.api.urls")),
    # Prometheus metrics at /metrics (docs/runs.md).
    path("", include("schedules.metrics")),
]

handler404 = "schedules.api.exception_handler.page_not_found"
handler500 = "schedules.api.exception_handler.server_error"
