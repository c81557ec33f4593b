"""The operators' admin: services, their schedules, the audit trail, and beat's own pages.

Every save, delete and action calls ``schedules/services.py`` with the logged-in user as the
actor, so the admin writes exactly as the API does and the audit trail names who did it.
django-celery-beat's pages stay, re-registered so they validate cron like the rest of the
project and cannot edit or cascade-delete what a service schedule owns.
"""

import uuid
from datetime import UTC, datetime

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django_celery_beat import admin as beat_admin
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from . import beat_rows, catalogue, selectors, services, timing
from .errors import BrokerUnavailable, ConflictError
from .forms import ScheduleForm, StrictCrontabScheduleForm, StrictPeriodicTaskForm
from .models import AuditEvent, Service, TaskSchedule

admin.site.site_header = "luffy-admin"
admin.site.site_title = "luffy-admin"
admin.site.index_title = "Services and their task schedules"


def utc(moment: datetime | None) -> str:
    """Readable UTC, e.g. '2026-11-27 12:15:00 UTC'; '-' for never."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "-"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _actor(request) -> services.Actor:
    return services.Actor.for_user(request.user)


def _copy_fields(target, source) -> None:
    """Make the admin's unsaved instance the row the service function saved."""
    for field in source._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
    target._state.adding = False


# --- the audit trail ------------------------------------------------------------------------


# Audit snapshots are JSON objects; show their keys in the order of the forms.
_AUDIT_KEY_ORDER = {
    key: position for position, key in enumerate(("id", "name", "description", *services.SCHEDULE_FIELDS, "task_id"))
}


def audit_changes(event: AuditEvent) -> list[tuple[str, object, object]]:
    """(field, before, after): what an update or toggle changed, what a create or run-now
    recorded, what a delete removed."""
    before, after = event.before or {}, event.after or {}
    if event.action == AuditEvent.Action.DELETE:
        recorded = [(key, value, None) for key, value in before.items() if value is not None]
    elif event.action in (AuditEvent.Action.CREATE, AuditEvent.Action.RUN_NOW):
        recorded = [(key, None, value) for key, value in after.items() if value is not None]
    else:
        recorded = [
            (key, before.get(key), after.get(key)) for key in {*before, *after} if before.get(key) != after.get(key)
        ]
    return sorted(recorded, key=lambda row: (_AUDIT_KEY_ORDER.get(row[0], len(_AUDIT_KEY_ORDER)), row[0]))


def _audit_value(value) -> str:
    return "-" if value is None else str(value)


def _with_beat_entries(deleted_objects_result, beat_entries):
    """Add the PeriodicTasks the write path deletes along (not cascades) to a delete summary."""
    deleted, model_count, perms_needed, protected = deleted_objects_result
    names = [f"Beat entry: {name}" for name in beat_entries.values_list("name", flat=True)]
    if names:
        deleted = [*deleted, *names]
        model_count = {**model_count, PeriodicTask._meta.verbose_name_plural: len(names)}
    return deleted, model_count, perms_needed, protected


def audit_history_view(model_admin, request, obj, events):
    """The History page of a service or schedule: its audit events, newest first."""
    opts = model_admin.model._meta
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Change history: {obj}",
        "subtitle": None,
        "object": obj,
        "opts": opts,
        "events": [{"event": event, "at": utc(event.at), "changes": audit_changes(event)} for event in events],
    }
    return TemplateResponse(request, "admin/schedules/audit_history.html", context)


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the trail is written by the service functions only."""

    list_display = ("when", "actor", "action", "target", "service_id", "schedule", "summary")
    list_filter = ("action", "target")
    search_fields = ("actor", "service_id")
    search_help_text = "Search by who (user:alice, api-key:fastapi), service id, or a schedule id."
    list_per_page = 50

    @admin.display(description="when (UTC)", ordering="at")
    def when(self, event):
        return utc(event.at)

    @admin.display(description="schedule")
    def schedule(self, event):
        if event.schedule_id is None:
            return None
        return format_html('<span title="{}">{}…</span>', event.schedule_id, str(event.schedule_id)[:8])

    @admin.display(description="change")
    def summary(self, event):
        changes = audit_changes(event)
        if event.action in (AuditEvent.Action.UPDATE, AuditEvent.Action.TOGGLE):
            parts = [f"{key}: {_audit_value(old)} → {_audit_value(new)}" for key, old, new in changes]
        else:
            parts = [f"{key}={_audit_value(new if old is None else old)}" for key, old, new in changes]
        return "; ".join(parts) or None

    def get_search_results(self, request, queryset, search_term):
        try:
            schedule_id = uuid.UUID(search_term.strip())
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
        return queryset.filter(schedule_id=schedule_id), False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- schedules ------------------------------------------------------------------------------


class WritePathAdmin(admin.ModelAdmin):
    """Deletes go through the write path and History shows the audit trail.

    Subclasses say which service function deletes one object and which audit events are its.
    """

    def delete_through_services(self, *, actor, obj):
        raise NotImplementedError

    def audit_events(self, obj):
        raise NotImplementedError

    def delete_model(self, request, obj):
        self.delete_through_services(actor=_actor(request), obj=obj)

    @transaction.atomic
    def delete_queryset(self, request, queryset):
        # One transaction for the whole selection: all of it goes, or none.
        actor = _actor(request)
        for obj in queryset:
            self.delete_through_services(actor=actor, obj=obj)

    def history_view(self, request, object_id, extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_or_change_permission(request, obj):
            return super().history_view(request, object_id, extra_context)
        return audit_history_view(self, request, obj, self.audit_events(obj))


class ScheduleColumns:
    """Columns a schedule shows in the schedules list and on its service's page."""

    @admin.display(description="service", ordering="service_id")
    def service_link(self, schedule):
        url = reverse("admin:schedules_service_change", args=[schedule.service_id])
        return format_html('<a href="{}">{}</a>', url, schedule.service_id)

    @admin.display(description="task", ordering="task_name")
    def task(self, schedule):
        return schedule.task_name

    @admin.display(description="timing")
    def timing_spec(self, schedule):
        current = beat_rows.timing_of(schedule.periodic_task)
        if current.schedule_type == timing.CRON:
            return current.cron_expression
        return f"every {current.interval_seconds} s"

    @admin.display(description="in words")
    def timing_words(self, schedule):
        return beat_rows.timing_of(schedule.periodic_task).description

    @admin.display(description="time zone")
    def timezone(self, schedule):
        return beat_rows.timing_of(schedule.periodic_task).timezone

    @admin.display(description="enabled", boolean=True, ordering="periodic_task__enabled")
    def enabled(self, schedule):
        return schedule.periodic_task.enabled

    @admin.display(description="last run", ordering="periodic_task__last_run_at")
    def last_run(self, schedule):
        return utc(schedule.periodic_task.last_run_at)

    @admin.display(description="next run")
    def next_run(self, schedule):
        return utc(selectors.schedule_next_run(schedule))


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
    list_filter = ("service", TaskFilter, ScheduleTypeFilter, ("periodic_task__enabled", admin.BooleanFieldListFilter))
    search_fields = ("service__id", "service__name", "task_name")
    search_help_text = "Search by service id or name, or task."
    actions = ("enable_schedules", "disable_schedules", "run_now")
    list_per_page = 50
    status_fields = (
        "timing_words",
        "last_run",
        "next_run",
        "total_run_count",
        "recent_dispatches",
        "beat_entry",
        "created",
        "updated",
    )

    class Media:
        js = ("schedules/schedule_form.js",)

    def get_queryset(self, request):
        return selectors.schedule_list()

    def get_fieldsets(self, request, obj=None):
        fieldsets = [
            (None, {"fields": ("service", "task_name")}),
            ("Timing", {"fields": ("schedule_type", "cron_expression", "interval_seconds", "timezone")}),
            (None, {"fields": ("enabled",)}),
        ]
        if obj is not None:
            fieldsets.append(("Status", {"fields": self.status_fields}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        # A schedule stays with its service: the service sends its id as the task argument.
        return ("service", *self.status_fields) if obj is not None else ()

    @admin.display(description="runs so far")
    def total_run_count(self, schedule):
        return schedule.periodic_task.total_run_count

    @admin.display(description="recent dispatches")
    def recent_dispatches(self, schedule):
        dispatches = selectors.schedule_recent_dispatches(schedule)
        if not dispatches:
            return "- (none recorded: the fleet scheduler records each send)"
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
            services.schedule_update(actor=_actor(request), schedule=obj, **form.schedule_values)
        else:
            schedule = services.schedule_create(
                actor=_actor(request), service=form.cleaned_data["service"], **form.schedule_values
            )
            _copy_fields(obj, schedule)

    def response_add(self, request, obj, post_url_continue=None):
        response = super().response_add(request, obj, post_url_continue)
        if any(key in request.POST for key in ("_continue", "_addanother", "_popup")):
            return response
        # Back to the service's page, where the new schedule shows with its next run.
        return HttpResponseRedirect(reverse("admin:schedules_service_change", args=[obj.service_id]))

    def get_deleted_objects(self, objs, request):
        beat_entries = selectors.owned_periodic_tasks().filter(luffy_schedule__in=[obj.pk for obj in objs])
        return _with_beat_entries(super().get_deleted_objects(objs, request), beat_entries)

    def delete_through_services(self, *, actor, obj):
        services.schedule_delete(actor=actor, schedule=obj)

    def audit_events(self, obj):
        return selectors.schedule_history(obj.pk)

    def _set_enabled(self, request, queryset, enabled: bool):
        verb = "enabled" if enabled else "disabled"
        actor, changed, unchanged = _actor(request), [], 0
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
            self.message_user(request, f"{_plural(len(changed), 'schedule')} {verb}: {', '.join(changed)}.")
        if unchanged:
            left = "it was" if unchanged == 1 else "they were"
            self.message_user(
                request,
                f"{_plural(unchanged, 'schedule')} already {verb}, left as {left}.",
                messages.WARNING if not changed else messages.INFO,
            )

    @admin.action(description="Enable selected schedules", permissions=["change"])
    def enable_schedules(self, request, queryset):
        self._set_enabled(request, queryset, True)

    @admin.action(description="Disable selected schedules", permissions=["change"])
    def disable_schedules(self, request, queryset):
        self._set_enabled(request, queryset, False)

    @admin.action(description="Run selected schedules now…", permissions=["change"])
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
        actor, sent = _actor(request), []
        for schedule in queryset:
            try:
                task_id = services.schedule_run_now(actor=actor, schedule=schedule)
            except BrokerUnavailable as exc:
                self.message_user(request, f"{schedule} not sent: {exc.detail}", messages.ERROR)
                continue
            sent.append(f"{schedule} (task id {task_id})")
        if sent:
            self.message_user(request, f"{_plural(len(sent), 'task')} sent: {'; '.join(sent)}.")
        return None


class ScheduleInline(ScheduleColumns, admin.TabularInline):
    """The service page's schedules: read-only rows, each linking to its own form."""

    model = TaskSchedule
    fields = ("edit", "task", "timing_spec", "timezone", "timing_words", "enabled", "last_run", "next_run")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "schedules"

    def get_queryset(self, request):
        return selectors.schedule_list()

    @admin.display(description="")
    def edit(self, schedule):
        url = reverse("admin:schedules_taskschedule_change", args=[schedule.pk])
        return format_html('<a href="{}">Edit</a>', url)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# --- services -------------------------------------------------------------------------------


@admin.register(Service)
class ServiceAdmin(WritePathAdmin):
    list_display = ("id", "name", "schedule_count", "updated")
    search_fields = ("id", "name", "description")
    search_help_text = "Search by service id, name or description."
    ordering = ("id",)
    inlines = (ScheduleInline,)
    change_form_template = "admin/schedules/service/change_form.html"

    def get_queryset(self, request):
        return selectors.service_list()

    def response_add(self, request, obj, post_url_continue=None):
        response = super().response_add(request, obj, post_url_continue)
        if any(key in request.POST for key in ("_addanother", "_popup")):
            return response
        # A new service is there to get schedules: stay on its page, where they are added.
        return HttpResponseRedirect(reverse("admin:schedules_service_change", args=[obj.pk]))

    def get_inline_instances(self, request, obj=None):
        # A new service has no schedules yet; they are added from its page once it exists.
        return super().get_inline_instances(request, obj) if obj is not None else []

    def get_fields(self, request, obj=None):
        return ("id", "name", "description", "created", "updated") if obj else ("id", "name", "description")

    def get_readonly_fields(self, request, obj=None):
        # The id is what beat sends to the workers; a new id is a new service.
        return ("id", "created", "updated") if obj else ()

    @admin.display(description="schedules", ordering="schedule_count")
    def schedule_count(self, service):
        return service.schedule_count

    @admin.display(description="created")
    def created(self, service):
        return utc(service.created_at)

    @admin.display(description="updated", ordering="updated_at")
    def updated(self, service):
        return utc(service.updated_at)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            services.service_update(
                actor=_actor(request), service=obj, name=data["name"], description=data["description"]
            )
        else:
            service = services.service_create(
                actor=_actor(request), service_id=data["id"], name=data["name"], description=data["description"]
            )
            _copy_fields(obj, service)

    def get_deleted_objects(self, objs, request):
        beat_entries = selectors.owned_periodic_tasks().filter(luffy_schedule__service__in=[obj.pk for obj in objs])
        return _with_beat_entries(super().get_deleted_objects(objs, request), beat_entries)

    def delete_through_services(self, *, actor, obj):
        services.service_delete(actor=actor, service=obj)

    def audit_events(self, obj):
        return selectors.service_history(obj.pk)


# --- django-celery-beat's own pages ---------------------------------------------------------

MANAGED_NOTE = "Managed by luffy-admin: change it on the schedule's page, not here."


class GuardedTimingAdmin:
    """Timing rows that service schedules use are read-only: an edit would change their
    timing behind the write path and the audit trail. Deleting one is refused by Django's
    protected-objects page (TaskSchedule.periodic_task is PROTECT)."""

    def has_change_permission(self, request, obj=None):
        if obj is not None and selectors.beat_row_is_owned(obj):
            return False
        return super().has_change_permission(request, obj)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        if obj is not None and selectors.beat_row_is_owned(obj):
            self.message_user(
                request, f"Service schedules use this {self.opts.verbose_name}. {MANAGED_NOTE}", messages.WARNING
            )
        return super().change_view(request, object_id, form_url, extra_context)


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
class PeriodicTaskAdmin(beat_admin.PeriodicTaskAdmin):
    """Beat's page; entries owned by a service schedule are view-only and skipped by actions."""

    form = StrictPeriodicTaskForm
    list_display = (*beat_admin.PeriodicTaskAdmin.list_display, "managed_by")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("luffy_schedule")

    @admin.display(description="managed by")
    def managed_by(self, periodic_task):
        schedule = getattr(periodic_task, "luffy_schedule", None)
        if schedule is None:
            return None
        url = reverse("admin:schedules_taskschedule_change", args=[schedule.pk])
        return format_html('<a href="{}">luffy-admin: {}</a>', url, schedule)

    def has_change_permission(self, request, obj=None):
        if obj is not None and selectors.beat_row_is_owned(obj):
            return False
        return super().has_change_permission(request, obj)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        if obj is not None and selectors.beat_row_is_owned(obj):
            self.message_user(
                request, f"This beat entry belongs to a service schedule. {MANAGED_NOTE}", messages.WARNING
            )
        return super().change_view(request, object_id, form_url, extra_context)

    def _on_unowned(self, request, queryset, action):
        """Run beat's bulk action on the selected entries that no service schedule owns."""
        skipped = selectors.owned_periodic_tasks(queryset).count()
        if skipped:
            self.message_user(
                request,
                f"{_plural(skipped, 'task')} skipped: {MANAGED_NOTE} Use the Schedules page's actions.",
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
