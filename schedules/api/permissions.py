"""Who may do what through the API.

Staff sessions need the Django model permission the admin would ask for (view / add / change /
delete on services and schedules, plus ``schedules.run_schedule`` to send a task now); API keys
need the matching scope (``read`` for view, ``run`` for run_schedule, ``write`` for the rest).
A view names its model in ``permission_model``; ``action_permissions`` overrides the
method's default for an action, or for ``(action, method)``.
"""

from rest_framework.permissions import BasePermission
from rest_framework_api_key.models import APIKey

from ..models import ApiKeyScope

# The admin's rules: reading needs "view", POST "add", PUT/PATCH "change", DELETE "delete".
METHOD_PERMISSIONS = {
    "GET": "view",
    "HEAD": "view",
    "OPTIONS": "view",
    "POST": "add",
    "PUT": "change",
    "PATCH": "change",
    "DELETE": "delete",
}
RUN_PERMISSION = "schedules.run_schedule"


def model_permission(model, action: str) -> str:
    return f"{model._meta.app_label}.{action}_{model._meta.model_name}"


def required_permissions(request, view) -> tuple[str, ...]:
    rules = getattr(view, "action_permissions", {})
    action = getattr(view, "action", None)
    rule = rules.get((action, request.method)) or rules.get(action)
    if rule is not None:
        return rule
    return (model_permission(view.permission_model, METHOD_PERMISSIONS[request.method]),)


def scope_for(permission: str) -> str:
    """The API key scope that stands for a model permission."""
    if permission == RUN_PERMISSION:
        return ApiKeyScope.RUN
    if permission.split(".", 1)[1].startswith("view_"):
        return ApiKeyScope.READ
    return ApiKeyScope.WRITE


class IsStaffOrApiKey(BasePermission):
    """A valid API key, or a logged-in, active staff user (the schema and docs pages)."""

    message = "Staff login or an API key is required."

    def has_permission(self, request, view):
        if isinstance(request.auth, APIKey):
            return True
        user = request.user
        return bool(user and user.is_active and user.is_staff)


class ModelPermissionOrKeyScope(IsStaffOrApiKey):
    """Staff with the model permissions the request needs, or an API key with the scopes."""

    def has_permission(self, request, view):
        if not super().has_permission(request, view):
            return False
        needed = required_permissions(request, view)
        if isinstance(request.auth, APIKey):
            # A key made outside `manage.py api_key` (the library's admin) has no scope row: no rights.
            granted = getattr(request.auth, "scope", None)
            missing = sorted({scope_for(permission) for permission in needed} - set(granted.names() if granted else []))
            if missing:
                self.message = f"This API key lacks the scope this request needs: {', '.join(map(repr, missing))}."
            return not missing
        missing = [permission for permission in needed if not request.user.has_perm(permission)]
        if missing:
            self.message = f"You lack the permission this request needs: {', '.join(map(repr, missing))}."
        return not missing
