"""Routes under /api/v1/task-scheduling/. Every path also answers without its trailing slash
(the seed's callers send none), with no redirect: POST bodies would not survive one."""

from django.urls import re_path
from rest_framework.routers import SimpleRouter

from . import views

OPTIONAL_SLASH = "/?"


class OptionalSlashRouter(SimpleRouter):
    def __init__(self):
        super().__init__()
        self.trailing_slash = OPTIONAL_SLASH


router = OptionalSlashRouter()
router.register("services", views.ServiceViewSet, basename="service")
router.register("schedules", views.ScheduleViewSet, basename="schedule")
router.register("tasks", views.TaskViewSet, basename="task")

urlpatterns = router.urls + [
    re_path(rf"^cron/preview{OPTIONAL_SLASH}$", views.CronPreviewView.as_view(), name="cron-preview"),
    re_path(rf"^health{OPTIONAL_SLASH}$", views.HealthView.as_view(), name="health"),
]


def schema_paths_without_slash(endpoints, **kwargs):
    """drf-spectacular preprocessing hook: document the paths as the seed spells them."""
    return [(path.rstrip("/"), regex, method, callback) for path, regex, method, callback in endpoints]
