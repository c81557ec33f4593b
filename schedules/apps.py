from django.apps import AppConfig
from django.conf import settings


class SchedulesConfig(AppConfig):
    name = "schedules"
    verbose_name = "Service schedules"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from .catalogue import load_catalogue

        # A broken catalogue must stop every process (web, beat, worker) at start-up with a
        # clear message, not surface later as a failed request or a task beat cannot route.
        load_catalogue(settings.LUFFY_TASK_CATALOGUE, known_queues=settings.LUFFY_QUEUES)
        # The API key admin with scopes; here rather than in schedules/admin* (being reorganised).
        from . import admin_keys  # noqa: F401
