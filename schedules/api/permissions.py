from rest_framework.permissions import BasePermission
from rest_framework_api_key.models import APIKey


class IsStaffOrApiKey(BasePermission):
    """A valid API key, or a logged-in, active staff user."""

    message = "Staff login or an API key is required."

    def has_permission(self, request, view):
        if isinstance(request.auth, APIKey):
            return True
        user = request.user
        return bool(user and user.is_active and user.is_staff)
