"""django-celery-beat's own pages, re-registered for operators.

Rows a service schedule owns (``selectors.beat_row_is_owned``) are view-only here and skipped by
beat's bulk actions: they change through the schedule's page, the write path and the audit
trail. Deleting one is refused by Django's protected-objects page (TaskSchedule.periodic_task is
PROTECT). Crontabs are checked with the project's cron rules, so beat never gets one it chokes on.
"""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.urls import reverse
from django.utils.html import format_html
from django_celery_beat import admin as beat_admin
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from .. import selectors
from .display import plural
from .forms import StrictCrontabScheduleForm, StrictPeriodicTaskForm

MANAGED_NOTE = "Managed by luffy-admin: change it on the schedule's page, not here."


class OwnedRowsReadOnly:
    """A row a service schedule owns or uses is view-only, and its page says why."""

    owned_row_warning: str

    def has_change_permission(self, request, obj=None):
        if obj is not None and selectors.beat_row_is_owned(obj):
            return False
        return super().has_change_permission(request, obj)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        if obj is not None and selectors.beat_row_is_owned(obj):
            self.message_user(request, f"{self.owned_row_warning} {MANAGED_NOTE}", messages.WARNING)
        return super().change_view(request, object_id, form_url, extra_context)


class GuardedTimingAdmin(OwnedRowsReadOnly):
    """Timing rows that service schedules use: an edit would change their timing behind the
    write path and the audit trail."""

    @property
    def owned_row_warning(self):
        return f"Service schedules use this {self.opts.verbose_name}."


admin.site.unregister(CrontabSchedule)
admin.site.unregister(IntervalSchedule)
admin.site.unregister(PeriodicTask)


@admin.register(CrontabSchedule)
class CrontabScheduleAdmin(GuardedTimingAdmin, beat_admin.CrontabScheduleAdmin):
    form = StrictCrontabScheduleForm


@admin.register(IntervalSchedule)
class IntervalScheduleAdmin(GuardedTimingAdmin, beat_admin.IntervalScheduleAdmin):
    pass


@admin.register(PeriodicTask)
class PeriodicTaskAdmin(OwnedRowsReadOnly, beat_admin.PeriodicTaskAdmin):
    """Beat's page; entries owned by a service schedule are view-only and skipped by actions."""

    form = StrictPeriodicTaskForm
    list_display = (*beat_admin.PeriodicTaskAdmin.list_display, "managed_by")
    owned_row_warning = "This beat entry belongs to a service schedule."

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("luffy_schedule")

    @admin.display(description="managed by")
    def managed_by(self, periodic_task):
        # The owner came with the list query (select_related): shown, not decided, here.
        schedule = getattr(periodic_task, "luffy_schedule", None)
        if schedule is None:
            return None
        url = reverse("admin:schedules_taskschedule_change", args=[schedule.pk])
        return format_html('<a href="{}">luffy-admin: {}</a>', url, schedule)

    def _on_unowned(self, request, queryset, action):
        """Run beat's bulk action on the selected entries that no service schedule owns."""
        skipped = selectors.owned_periodic_tasks(queryset).count()
        if skipped:
            self.message_user(
                request,
                f"{plural(skipped, 'task')} skipped: {MANAGED_NOTE} Use the Schedules page's actions.",
                messages.WARNING,
            )
        unowned = selectors.unowned_periodic_tasks(queryset)
        return action(request, unowned) if unowned.exists() else None

    @admin.action(description="Enable selected tasks")
    def enable_tasks(self, request, queryset):
        return self._on_unowned(request, queryset, super().enable_tasks)

    @admin.action(description="Disable selected tasks")
    def disable_tasks(self, request, queryset):
        return self._on_unowned(request, queryset, super().disable_tasks)

    @admin.action(description="Toggle activity of selected tasks")
    def toggle_tasks(self, request, queryset):
        return self._on_unowned(request, queryset, super().toggle_tasks)

    @admin.action(description="Run selected tasks")
    def run_tasks(self, request, queryset):
        return self._on_unowned(request, queryset, super().run_tasks)
