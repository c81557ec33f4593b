"""Schedules: the list with its filters and actions (enable, disable, run now), and the schedule form."""

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from .. import beat_rows, catalogue, selectors, services, timing
from ..errors import BrokerUnavailable, ConflictError
from ..models import TaskSchedule
from .base import WritePathAdmin, actor_of, copy_saved_fields
from .display import ScheduleColumns, plural, utc
from .forms import ScheduleForm
from .load import upcoming_load_view
from .runs import RUNS_SHOWN, FailingFilter, runs_chart, runs_table


class TaskFilter(admin.SimpleListFilter):
    title = "task"
    parameter_name = "task"

    def lookups(self, request, model_admin):
        return [(name, name) for name in catalogue.task_names()]

    def queryset(self, request, queryset):
        return queryset.filter(task_name=self.value()) if self.value() else queryset


class ScheduleTypeFilter(admin.SimpleListFilter):
    title = "type"
    parameter_name = "type"

    def lookups(self, request, model_admin):
        return [(timing.CRON, "cron"), (timing.INTERVAL, "interval")]

    def queryset(self, request, queryset):
        if self.value() == timing.CRON:
            return queryset.filter(periodic_task__crontab__isnull=False)
        if self.value() == timing.INTERVAL:
            return queryset.filter(periodic_task__interval__isnull=False)
        return queryset


@admin.register(TaskSchedule)
class TaskScheduleAdmin(ScheduleColumns, WritePathAdmin):
    form = ScheduleForm
    list_display = (
        "service_link",
        "task",
        "timing_words",
        "timing_spec",
        "timezone",
        "enabled",
        "last_run",
        "next_run",
    )
    list_display_links = ("task", "timing_words")
    list_filter = (
        "service",
        TaskFilter,
        ScheduleTypeFilter,
        ("periodic_task__enabled", admin.BooleanFieldListFilter),
        FailingFilter,
    )
    search_fields = ("service__id", "service__name", "task_name")
    search_help_text = "Search by service id or name, or task."
    actions = ("enable_schedules", "disable_schedules", "run_now")
    list_per_page = 50
    status_fields = (
        "timing_words",
        "resolved_cron_expression",
        "last_run_at",
        "next_run_at",
        "total_run_count",
        "recent_dispatches",
        "beat_entry",
        "created",
        "updated",
    )
    run_fields = ("runs_chart", "recent_runs")

    class Media:
        css = {"all": (ScheduleColumns.LIST_CSS,)}
        js = ("schedules/schedule_form.js",)

    def get_queryset(self, request):
        return selectors.schedule_list()

    def get_urls(self):
        # Before the change view's catch-all "<object_id>/".
        return [
            path(
                "load/",
                self.admin_site.admin_view(self.upcoming_load),
                name="schedules_taskschedule_load",
            ),
            *super().get_urls(),
        ]

    def upcoming_load(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        return upcoming_load_view(self, request)

    def get_fieldsets(self, request, obj=None):
        fieldsets = [
            (None, {"fields": ("service", "task_name")}),
            (
                "Timing",
                {"fields": ("schedule_type", "cron_expression", "interval_seconds", "jitter_seconds", "timezone")},
            ),
            (None, {"fields": ("enabled",)}),
        ]
        if obj is not None:
            fieldsets.append(("Status", {"fields": self.status_fields}))
            fieldsets.append((f"Last {RUNS_SHOWN} runs", {"fields": self.run_fields}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        # A schedule stays with its service: the service sends its id as the task argument.
        return ("service", *self.status_fields, *self.run_fields) if obj is not None else ()

    def _recent_runs(self, schedule) -> list:
        # Both run fields render on one page: read the runs once per request.
        if getattr(schedule, "_recent_runs_cache", None) is None:
            schedule._recent_runs_cache = list(selectors.schedule_runs(schedule)[:RUNS_SHOWN])
        return schedule._recent_runs_cache

    @admin.display(description="runtime and lateness")
    def runs_chart(self, schedule):
        return runs_chart(self._recent_runs(schedule))

    @admin.display(description="runs")
    def recent_runs(self, schedule):
        return runs_table(self._recent_runs(schedule))

    @admin.display(description="resolved cron expression")
    def resolved_cron_expression(self, schedule):
        """What beat runs: equal to the expression unless it has H fields; '-' for an interval."""
        return beat_rows.timing_of(schedule.periodic_task).cron_expression or "-"

    @admin.display(description="last run")
    def last_run_at(self, schedule):
        return utc(schedule.periodic_task.last_run_at)

    @admin.display(description="next run")
    def next_run_at(self, schedule):
        return utc(selectors.schedule_next_run(schedule))

    @admin.display(description="runs so far")
    def total_run_count(self, schedule):
        return schedule.periodic_task.total_run_count

    @admin.display(description="recent dispatches")
    def recent_dispatches(self, schedule):
        dispatches = selectors.schedule_recent_dispatches(schedule)
        if not dispatches:
            return "- (none recorded yet)"
        return format_html_join(
            mark_safe("<br>"),
            "{} sent {} (task {})",
            ((utc(dispatch.slot), utc(dispatch.sent_at), dispatch.task_id) for dispatch in dispatches),
        )

    @admin.display(description="beat entry")
    def beat_entry(self, schedule):
        url = reverse("admin:django_celery_beat_periodictask_change", args=[schedule.periodic_task_id])
        return format_html('<a href="{}">{}</a>', url, schedule.periodic_task.name)

    @admin.display(description="created")
    def created(self, schedule):
        return utc(schedule.created_at)

    @admin.display(description="updated")
    def updated(self, schedule):
        return utc(schedule.updated_at)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # The form checked with schedule_validate; a concurrent change can still make the
        # write refuse (e.g. someone saved the same timing meanwhile): say so, do not 500.
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except (ValidationError, ConflictError) as exc:
            detail = exc.detail if isinstance(exc, ConflictError) else " ".join(exc.messages)
            self.message_user(request, f"Nothing was saved: {detail}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def save_model(self, request, obj, form, change):
        if change:
            services.schedule_update(actor=actor_of(request), schedule=obj, **form.schedule_values)
        else:
            schedule = services.schedule_create(
                actor=actor_of(request), service=form.cleaned_data["service"], **form.schedule_values
            )
            copy_saved_fields(obj, schedule)

    def response_add(self, request, obj, post_url_continue=None):
        response = super().response_add(request, obj, post_url_continue)
        if any(key in request.POST for key in ("_continue", "_addanother", "_popup")):
            return response
        # Back to the service's page, where the new schedule shows with its next run.
        return HttpResponseRedirect(reverse("admin:schedules_service_change", args=[obj.service_id]))

    def beat_entries_deleted_along(self, objs):
        return selectors.owned_periodic_tasks().filter(luffy_schedule__in=[obj.pk for obj in objs])

    def delete_through_services(self, *, actor, obj):
        services.schedule_delete(actor=actor, schedule=obj)

    def audit_events(self, obj):
        return selectors.schedule_history(obj.pk)

    def _set_enabled(self, request, queryset, enabled: bool):
        verb = "enabled" if enabled else "disabled"
        actor, changed, unchanged = actor_of(request), [], 0
        for schedule in queryset:
            if schedule.periodic_task.enabled == enabled:
                unchanged += 1
                continue
            try:
                services.schedule_set_enabled(actor=actor, schedule=schedule, enabled=enabled)
            except ValidationError as exc:
                self.message_user(request, f"{schedule} not {verb}: {' '.join(exc.messages)}", messages.ERROR)
                continue
            changed.append(str(schedule))
        if changed:
            self.message_user(request, f"{plural(len(changed), 'schedule')} {verb}: {', '.join(changed)}.")
        if unchanged:
            left = "it was" if unchanged == 1 else "they were"
            self.message_user(
                request,
                f"{plural(unchanged, 'schedule')} already {verb}, left as {left}.",
                messages.WARNING if not changed else messages.INFO,
            )

    @admin.action(description="Enable selected schedules", permissions=["change"])
    def enable_schedules(self, request, queryset):
        self._set_enabled(request, queryset, True)

    @admin.action(description="Disable selected schedules", permissions=["change"])
    def disable_schedules(self, request, queryset):
        self._set_enabled(request, queryset, False)

    def has_run_permission(self, request) -> bool:
        """Running sends work to luffy's workers at once: its own permission, as in the API."""
        return request.user.has_perm(f"{self.opts.app_label}.run_schedule")

    @admin.action(description="Run selected schedules now…", permissions=["run"])
    def run_now(self, request, queryset):
        if request.POST.get("post") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": "Run now?",
                "subtitle": None,
                "opts": self.opts,
                "schedules": list(queryset),
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "media": self.media,
            }
            return TemplateResponse(request, "admin/schedules/taskschedule/run_now_confirmation.html", context)
        actor, sent = actor_of(request), []
        for schedule in queryset:
            try:
                task_id = services.schedule_run_now(actor=actor, schedule=schedule)
            except BrokerUnavailable as exc:
                self.message_user(request, f"{schedule} not sent: {exc.detail}", messages.ERROR)
                continue
            sent.append(f"{schedule} (task id {task_id})")
        if sent:
            self.message_user(request, f"{plural(len(sent), 'task')} sent: {'; '.join(sent)}.")
        return None
