"""Services: the list with schedule counts, and a service's page with its schedules inline."""

from django.contrib import admin
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from .. import selectors, services
from ..models import Service, TaskSchedule
from .base import WritePathAdmin, actor_of, copy_saved_fields
from .display import ScheduleColumns, utc


class ScheduleInline(ScheduleColumns, admin.TabularInline):
    """The service page's schedules: read-only rows, each linking to its own form."""

    model = TaskSchedule
    fields = ("edit", "task", "timing_spec", "timezone", "timing_words", "enabled", "last_run", "next_run")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "schedules"

    class Media:
        css = {"all": (ScheduleColumns.LIST_CSS,)}

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
                actor=actor_of(request), service=obj, name=data["name"], description=data["description"]
            )
        else:
            service = services.service_create(
                actor=actor_of(request), service_id=data["id"], name=data["name"], description=data["description"]
            )
            copy_saved_fields(obj, service)

    def beat_entries_deleted_along(self, objs):
        return selectors.owned_periodic_tasks().filter(luffy_schedule__service__in=[obj.pk for obj in objs])

    def delete_through_services(self, *, actor, obj):
        services.service_delete(actor=actor, service=obj)

    def audit_events(self, obj):
        return selectors.service_history(obj.pk)
