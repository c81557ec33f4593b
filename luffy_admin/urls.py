from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from schedules.permissions import IsStaffOrApiKey

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/task-scheduling/", include("schedules.urls")),
    # The API description is for its callers: staff (logged in to the admin) or API keys.
    re_path(r"^api/schema/?$", SpectacularAPIView.as_view(permission_classes=[IsStaffOrApiKey]), name="schema"),
    re_path(
        r"^api/docs/?$",
        SpectacularSwaggerView.as_view(url_name="schema", permission_classes=[IsStaffOrApiKey]),
        name="api-docs",
    ),
]

handler404 = "luffy_admin.exception_handler.page_not_found"
handler500 = "luffy_admin.exception_handler.server_error"
