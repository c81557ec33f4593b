"""What the app's own admins share: the acting user, and deletes and History through the write path."""

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.db import transaction
from django_celery_beat.models import PeriodicTask

from .. import services
from .audit import audit_history_view


def actor_of(request) -> services.Actor:
    """Who the audit trail names for this request's writes."""
    return services.Actor.for_user(request.user)


def copy_saved_fields(target, source) -> None:
    """Make the admin's unsaved instance the row the service function saved."""
    for field in source._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
    target._state.adding = False


class WritePathAdmin(admin.ModelAdmin):
    """Deletes go through the write path and History shows the audit trail.

    Subclasses say which service function deletes one object, which beat entries that delete
    takes along (the write path deletes them; no cascade shows them), and which audit events
    are the object's.
    """

    def delete_through_services(self, *, actor, obj):
        raise NotImplementedError

    def beat_entries_deleted_along(self, objs):
        raise NotImplementedError

    def audit_events(self, obj):
        raise NotImplementedError

    def get_deleted_objects(self, objs, request):
        deleted, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        names = [f"Beat entry: {name}" for name in self.beat_entries_deleted_along(objs).values_list("name", flat=True)]
        if names:
            deleted = [*deleted, *names]
            model_count = {**model_count, PeriodicTask._meta.verbose_name_plural: len(names)}
        return deleted, model_count, perms_needed, protected

    def delete_model(self, request, obj):
        self.delete_through_services(actor=actor_of(request), obj=obj)

    @transaction.atomic
    def delete_queryset(self, request, queryset):
        # One transaction for the whole selection: all of it goes, or none.
        request_actor = actor_of(request)
        for obj in queryset:
            self.delete_through_services(actor=request_actor, obj=obj)

    def history_view(self, request, object_id, extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_or_change_permission(request, obj):
            return super().history_view(request, object_id, extra_context)
        return audit_history_view(self, request, obj, self.audit_events(obj))
