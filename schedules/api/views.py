"""Services and schedules over REST (base ``/api/v1/task-scheduling``).

Reads go through selectors and writes through services; bodies and query strings are checked
by serializers and filter serializers first.

Paths, bodies and messages follow the seed's FastAPI endpoints so its callers work unchanged:
the per-service list is a bare array, ``PUT /schedules/{id}`` takes a partial body,
``toggle`` reads ``?enabled=`` and ``DELETE`` answers with the seed's message.
"""

import uuid
from http import HTTPStatus

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, pagination, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework_api_key.models import APIKey

from .. import messages, selectors, services
from ..models import Service, TaskSchedule, is_service_id
from .exception_handler import SCHEDULE_NOT_FOUND, SERVICE_NOT_FOUND
from .filters import (
    SCHEDULE_FILTER_PARAMETERS,
    TOGGLE_QUERY_PARAMETERS,
    ScheduleFilterSerializer,
    ToggleQuerySerializer,
    validated_query,
)
from .permissions import RUN_PERMISSION, model_permission
from .serializers import (
    CONFLICT,
    ERROR_RESPONSES,
    AuditEventSerializer,
    DispatchSerializer,
    ErrorSerializer,
    MessageSerializer,
    RunResponseSerializer,
    ScheduleCreateSerializer,
    ScheduleSerializer,
    ScheduleUpdateSerializer,
    ServiceCreateSerializer,
    ServiceSerializer,
    ServiceUpdateSerializer,
    ToggleResponseSerializer,
    ToggleSerializer,
)

# Ids are matched loosely so a malformed one answers like a missing one ("Schedule not found").
ANY_SEGMENT = "[^/]+"


class PageNumberPagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 200


def _actor(request) -> services.Actor:
    if isinstance(request.auth, APIKey):
        return services.Actor.for_api_key(request.auth)
    return services.Actor.for_user(request.user)


def _validated(serializer_class, data, *, partial: bool = False) -> dict:
    serializer = serializer_class(data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _service_or_404(service_id):
    # Checked before any query: an id that cannot exist (a NUL byte, which PostgreSQL refuses
    # in a query) is simply not found.
    service = selectors.service_list().filter(pk=service_id).first() if is_service_id(service_id) else None
    if service is None:
        raise exceptions.NotFound(SERVICE_NOT_FOUND)
    return service


def _schedule_or_404(schedule_id):
    schedule = selectors.schedule_get(schedule_id)
    if schedule is None:
        raise exceptions.NotFound(SCHEDULE_NOT_FOUND)
    return schedule


def _schedule_body(schedule) -> dict:
    """The schedule as stored after a write (re-read so it shows what beat sees)."""
    return ScheduleSerializer(_schedule_or_404(schedule.pk)).data


# --- services -------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="List services",
        responses={200: ServiceSerializer(many=True), 400: ERROR_RESPONSES[HTTPStatus.BAD_REQUEST]},
    ),
    create=extend_schema(
        summary="Create a service",
        request=ServiceCreateSerializer,
        responses={
            201: ServiceSerializer,
            409: OpenApiResponse(ErrorSerializer, description="The service exists."),
            **ERROR_RESPONSES,
        },
    ),
    retrieve=extend_schema(summary="One service", responses={200: ServiceSerializer, **ERROR_RESPONSES}),
    update=extend_schema(
        summary="Create or replace a service (idempotent)",
        request=ServiceUpdateSerializer,
        responses={200: ServiceSerializer, 201: ServiceSerializer, **ERROR_RESPONSES},
    ),
    partial_update=extend_schema(
        summary="Change a service's name or description",
        request=ServiceUpdateSerializer,
        responses={200: ServiceSerializer, **ERROR_RESPONSES},
    ),
    destroy=extend_schema(
        summary="Delete a service with its schedules", responses={200: MessageSerializer, **ERROR_RESPONSES}
    ),
)
class ServiceViewSet(viewsets.GenericViewSet):
    permission_model = Service
    action_permissions = {
        # PUT creates the service when it is missing.
        "update": (model_permission(Service, "add"), model_permission(Service, "change")),
        ("schedules", "GET"): (model_permission(TaskSchedule, "view"),),
        ("schedules", "POST"): (model_permission(TaskSchedule, "add"),),
    }
    lookup_url_kwarg = "service_id"
    lookup_value_regex = ANY_SEGMENT
    pagination_class = PageNumberPagination
    serializer_class = ServiceSerializer

    def get_queryset(self):
        return selectors.service_list()

    def list(self, request):
        validated_query(request, paginator=self.paginator)
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ServiceSerializer(page, many=True).data)

    def create(self, request):
        data = _validated(ServiceCreateSerializer, request.data)
        service = services.service_create(
            actor=_actor(request),
            service_id=data["id"],
            name=data["name"],
            description=data.get("description", ""),
        )
        return Response(ServiceSerializer(_service_or_404(service.pk)).data, status=HTTPStatus.CREATED)

    def retrieve(self, request, service_id):
        return Response(ServiceSerializer(_service_or_404(service_id)).data)

    def update(self, request, service_id):
        if not is_service_id(service_id):
            raise exceptions.ValidationError({"id": [messages.SERVICE_ID]})
        data = _validated(ServiceUpdateSerializer, request.data)
        service, created = services.service_put(
            actor=_actor(request),
            service_id=service_id,
            name=data["name"],
            description=data.get("description", ""),
        )
        return Response(
            ServiceSerializer(_service_or_404(service.pk)).data,
            status=HTTPStatus.CREATED if created else HTTPStatus.OK,
        )

    def partial_update(self, request, service_id):
        service = _service_or_404(service_id)
        data = _validated(ServiceUpdateSerializer, request.data, partial=True)
        services.service_update(actor=_actor(request), service=service, **data)
        return Response(ServiceSerializer(_service_or_404(service_id)).data)

    def destroy(self, request, service_id):
        services.service_delete(actor=_actor(request), service=_service_or_404(service_id))
        return Response({"message": "Service deleted successfully"})

    @extend_schema(
        methods=["GET"],
        summary="A service's schedules (a bare array, as the seed)",
        responses={200: ScheduleSerializer(many=True), **ERROR_RESPONSES},
    )
    @extend_schema(
        methods=["POST"],
        summary="Create a schedule for the service",
        request=ScheduleCreateSerializer,
        responses={201: ScheduleSerializer, **CONFLICT, **ERROR_RESPONSES},
    )
    @action(detail=True, methods=["get", "post"], pagination_class=None)
    def schedules(self, request, service_id):
        service = _service_or_404(service_id)
        if request.method == "GET":
            validated_query(request)
            return Response(ScheduleSerializer(selectors.schedule_list(service=service), many=True).data)
        data = _validated(ScheduleCreateSerializer, request.data)
        schedule = services.schedule_create(actor=_actor(request), service=service, **data)
        return Response(_schedule_body(schedule), status=HTTPStatus.CREATED)


# --- schedules ------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="All schedules, filtered and paginated",
        parameters=SCHEDULE_FILTER_PARAMETERS,
        responses={200: ScheduleSerializer(many=True), **ERROR_RESPONSES},
    ),
    retrieve=extend_schema(summary="One schedule", responses={200: ScheduleSerializer, **ERROR_RESPONSES}),
    update=extend_schema(
        summary="Update a schedule; only the fields given change (as the seed's PUT)",
        request=ScheduleUpdateSerializer,
        responses={200: ScheduleSerializer, **CONFLICT, **ERROR_RESPONSES},
    ),
    partial_update=extend_schema(
        summary="Update a schedule; only the fields given change",
        request=ScheduleUpdateSerializer,
        responses={200: ScheduleSerializer, **CONFLICT, **ERROR_RESPONSES},
    ),
    destroy=extend_schema(
        summary="Delete a schedule and its beat entry", responses={200: MessageSerializer, **ERROR_RESPONSES}
    ),
)
class ScheduleViewSet(viewsets.GenericViewSet):
    permission_model = TaskSchedule
    action_permissions = {
        "toggle": (model_permission(TaskSchedule, "change"),),
        "run": (RUN_PERMISSION,),
    }
    lookup_url_kwarg = "id"
    lookup_value_regex = ANY_SEGMENT
    pagination_class = PageNumberPagination
    serializer_class = ScheduleSerializer

    def get_queryset(self):
        return selectors.schedule_list()

    def list(self, request):
        filters = validated_query(request, ScheduleFilterSerializer, paginator=self.paginator)
        page = self.paginate_queryset(selectors.schedule_list(**filters))
        return self.get_paginated_response(ScheduleSerializer(page, many=True).data)

    def retrieve(self, request, id):
        return Response(ScheduleSerializer(_schedule_or_404(id)).data)

    def update(self, request, id):
        schedule = _schedule_or_404(id)
        data = _validated(ScheduleUpdateSerializer, request.data)
        schedule = services.schedule_update(actor=_actor(request), schedule=schedule, **data)
        return Response(_schedule_body(schedule))

    partial_update = update

    def destroy(self, request, id):
        services.schedule_delete(actor=_actor(request), schedule=_schedule_or_404(id))
        return Response({"message": "Schedule deleted successfully"})

    @extend_schema(
        summary="Enable or disable a schedule",
        parameters=TOGGLE_QUERY_PARAMETERS,
        request=ToggleSerializer,
        responses={200: ToggleResponseSerializer, **ERROR_RESPONSES},
    )
    @action(detail=True, methods=["post"])
    def toggle(self, request, id):
        schedule = _schedule_or_404(id)
        query = validated_query(request, ToggleQuerySerializer)
        given = [query["enabled"]] if "enabled" in query else []
        # The seed's toggle ignored its body; a client that sends `null` there still works.
        body = _validated(ToggleSerializer, request.data if request.data is not None else {})
        if "enabled" in body:
            given.append(body["enabled"])
        if not given:
            raise exceptions.ValidationError(
                {"enabled": ['enabled is required: ?enabled=true|false or a body {"enabled": true}.']}
            )
        if len(given) == 2 and given[0] != given[1]:
            raise exceptions.ValidationError({"enabled": ["The query string and the body disagree."]})
        schedule = services.schedule_set_enabled(actor=_actor(request), schedule=schedule, enabled=given[0])
        body = _schedule_body(schedule)
        state = "enabled" if body["enabled"] else "disabled"
        return Response({"message": f"Schedule {state} successfully", "schedule": body})

    @extend_schema(
        summary="Send the task now with [service_id]",
        request=None,
        responses={
            202: RunResponseSerializer,
            503: OpenApiResponse(ErrorSerializer, description="The broker is unreachable."),
            **ERROR_RESPONSES,
        },
    )
    @action(detail=True, methods=["post"])
    def run(self, request, id):
        schedule = _schedule_or_404(id)
        task_id = services.schedule_run_now(actor=_actor(request), schedule=schedule)
        return Response({"task_id": task_id}, status=HTTPStatus.ACCEPTED)

    @extend_schema(
        summary="The last 10 sends beat made for the schedule, newest first",
        description="Recorded by the fleet scheduler (the default `celery -A luffy_admin beat`); "
        "django-celery-beat's stock scheduler (`-S django`) records none.",
        responses={200: DispatchSerializer(many=True), **ERROR_RESPONSES},
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def dispatches(self, request, id):
        schedule = _schedule_or_404(id)
        validated_query(request)
        return Response(DispatchSerializer(selectors.schedule_recent_dispatches(schedule), many=True).data)

    @extend_schema(
        summary="The schedule's change history, newest first",
        responses={200: AuditEventSerializer(many=True), **ERROR_RESPONSES},
    )
    @action(detail=True, methods=["get"])
    def history(self, request, id):
        try:
            schedule_id = uuid.UUID(id)
        except ValueError:
            raise exceptions.NotFound(SCHEDULE_NOT_FOUND) from None
        # The trail outlives the schedule: a deleted schedule's history stays readable.
        events = selectors.schedule_history(schedule_id)
        if not events.exists() and selectors.schedule_get(schedule_id) is None:
            raise exceptions.NotFound(SCHEDULE_NOT_FOUND)
        validated_query(request, paginator=self.paginator)
        page = self.paginate_queryset(events)
        return self.get_paginated_response(AuditEventSerializer(page, many=True).data)
