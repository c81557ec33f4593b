"""The API key admin with scopes: djangorestframework-api-key's own admin, plus a scopes
column and an inline to set them. Loaded from ``SchedulesConfig.ready`` (after the admin's
autodiscovery registered the library's version, which this replaces)."""

from django.contrib import admin
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from ..models import ApiKeyScope


class ApiKeyScopeInline(admin.StackedInline):
    model = ApiKeyScope
    can_delete = False
    # A key without a scope row may do nothing; the inline offers the row with read only.
    min_num = 1


class ScopedAPIKeyAdmin(APIKeyModelAdmin):
    inlines = [ApiKeyScopeInline]
    list_display = (*APIKeyModelAdmin.list_display, "scopes")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("scope")

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # Django skips an inline form left as offered; the key still gets its (read) row.
        ApiKeyScope.objects.get_or_create(api_key=form.instance)

    @admin.display(description="scopes")
    def scopes(self, obj):
        return str(getattr(obj, "scope", "none"))


admin.site.unregister(APIKey)
admin.site.register(APIKey, ScopedAPIKeyAdmin)
