"""The audit trail in the admin: its read-only list, and the History page of a service or schedule."""

import uuid

from django.contrib import admin
from django.template.response import TemplateResponse
from django.utils.html import format_html

from .. import services
from ..models import AuditEvent
from .display import utc

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
