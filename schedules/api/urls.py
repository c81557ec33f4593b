"""Routes under /api/: the API at v1/task-scheduling/, its OpenAPI schema and docs page.

Every API path also answers without its trailing slash (the seed's callers send none), with
no redirect: POST bodies would not survive one.
"""

from http import HTTPStatus

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from . import views
from .permissions import IsStaffOrApiKey
from .serializers.base import ERROR_DESCRIPTIONS

OPTIONAL_SLASH = "/?"


class OptionalSlashRouter(SimpleRouter):
    def __init__(self):
        super().__init__()
        self.trailing_slash = OPTIONAL_SLASH


router = OptionalSlashRouter()
router.register("services", views.ServiceViewSet, basename="service")
router.register("schedules", views.ScheduleViewSet, basename="schedule")
router.register("tasks", views.TaskViewSet, basename="task")

api_urlpatterns = router.urls + [
    re_path(rf"^cron/preview{OPTIONAL_SLASH}$", views.CronPreviewView.as_view(), name="cron-preview"),
    re_path(rf"^health{OPTIONAL_SLASH}$", views.HealthView.as_view(), name="health"),
    re_path(rf"^load{OPTIONAL_SLASH}$", views.LoadView.as_view(), name="load"),
]

urlpatterns = [
    path("v1/task-scheduling/", include(api_urlpatterns)),
    # The API description is for its callers: staff (logged in to the admin) or API keys.
    re_path(
        rf"^schema{OPTIONAL_SLASH}$",
        SpectacularAPIView.as_view(permission_classes=[IsStaffOrApiKey]),
        name="schema",
    ),
    re_path(
        rf"^docs{OPTIONAL_SLASH}$",
        # The split view serves Swagger UI's init script as a file (?script), not inline, so the
        # Content-Security-Policy needs no 'unsafe-inline' for scripts.
        SpectacularSwaggerSplitView.as_view(url_name="schema", permission_classes=[IsStaffOrApiKey]),
        name="api-docs",
    ),
]


def schema_paths_without_slash(endpoints, **kwargs):
    """drf-spectacular preprocessing hook: document the paths as the seed spells them."""
    return [(path.rstrip("/"), regex, method, callback) for path, regex, method, callback in endpoints]


def _error_response(description: str) -> dict:
    return {
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        "description": description,
    }


# Answers every operation may give, whatever its view: documented once here rather than on each.
COMMON_ERRORS = {
    "429": _error_response("Too many requests (`code: throttled`); `Retry-After` says when to retry."),
    "503": _error_response(
        "The database (`code: service_unavailable`, with `Retry-After`) or, for /run, the broker is unavailable."
    ),
}
FORBIDDEN = {"403": _error_response(ERROR_DESCRIPTIONS[HTTPStatus.FORBIDDEN])}


def schema_common_error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook: 429 and 503 on every operation, 403 on every one
    that needs credentials (all but /health)."""
    for operations in result["paths"].values():
        for operation in operations.values():
            extra = {**COMMON_ERRORS, **(FORBIDDEN if operation.get("security") else {})}
            # /health documents its own 503 body (the health report).
            operation["responses"] = {**extra, **operation["responses"]}
            operation["responses"] = dict(sorted(operation["responses"].items()))
    return result
