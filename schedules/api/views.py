"""Services and schedules over REST (base ``/api/v1/task-scheduling``).

Reads go through selectors and writes through services; bodies and query strings are checked
by serializers and filter serializers first.

Paths, bodies and messages follow the seed's FastAPI endpoints so its callers work unchanged:
the per-service list is a bare array, ``PUT /schedules/{id}`` takes a partial body,
``toggle`` reads ``?enabled=`` and ``DELETE`` answers with the seed's message.
"""

import uuid
from http import HTTPStatus

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework_api_key.models import APIKey

from .. import messages, selectors, services
from ..models import Service, TaskSchedule, is_service_id
from .exception_handler import SCHEDULE_NOT_FOUND, SERVICE_NOT_FOUND
from .filters import (
    SCHEDULE_FILTER_PARAMETERS,
    SCHEDULE_SET_QUERY_PARAMETERS,
    TOGGLE_QUERY_PARAMETERS,
    RunFilterSerializer,
    ScheduleFilterSerializer,
    ScheduleSetQuerySerializer,
    ToggleQuerySerializer,
    validated_query,
)
from .pagination import PageNumberPagination
from .permissions import RUN_PERMISSION, model_permission
from .serializers import (
    AuditEventSerializer,
    DispatchSerializer,
    MessageSerializer,
    RunResponseSerializer,
    RunSerializer,
    ScheduleCreateSerializer,
    ScheduleSerializer,
    ScheduleSetSerializer,
    ScheduleUpdateSerializer,
    ServiceCreateSerializer,
    ServiceDetailSerializer,
    ServiceSerializer,
    ServiceUpdateSerializer,
    ToggleResponseSerializer,
    ToggleSerializer,
    errors_for,
)

# Ids are matched loosely so a malformed one answers like a missing one ("Schedule not found").
ANY_SEGMENT = "[^/]+"
MAX_IDEMPOTENCY_KEY_LENGTH = 255

# The optional request headers, as the schema documents them.
IF_MATCH = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="Optional. The ETag of the version you read: the write is refused with 412 if it changed since. "
    'Example: "3f2a9c0d1e4b5a6978877665544332211"',
)
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="Optional, up to 255 printable ASCII characters (a UUID is ideal). A retry with the same key and "
    "body within 24 h answers the first answer (header `Idempotent-Replayed: true`) and changes nothing; the "
    "same key with another body is a 422.",
)
ETAG = OpenApiParameter(
    "ETag",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    response=True,
    description="The version of what a caller can change (not run state); send it back in `If-Match`.",
)

CRON_CREATE_EXAMPLE = OpenApiExample(
    "Cron schedule",
    value={"task_name": "fetch_logs", "cron_expression": "*/15 * * * *", "timezone": "UTC", "key": "logs"},
    request_only=True,
)
INTERVAL_CREATE_EXAMPLE = OpenApiExample(
    "Interval schedule",
    value={"task_name": "index_code", "schedule_type": "interval", "interval_seconds": 3600},
    request_only=True,
)
CONFLICT_EXAMPLE = OpenApiExample(
    "Duplicate schedule",
    value={
        "detail": "Service 'web-app' already has this fetch_logs schedule (id 0d5f7b7e-8a55-4a43-9d2a-3c1e0b6f2a10).",
        "code": "conflict",
        "existing_id": "0d5f7b7e-8a55-4a43-9d2a-3c1e0b6f2a10",
    },
    response_only=True,
    status_codes=["409"],
)
REPLACE_EXAMPLE = OpenApiExample(
    "The service's three schedules",
    value=[
        {"task_name": "fetch_logs", "cron_expression": "*/15 * * * *", "key": "logs"},
        {"task_name": "generate_rca", "cron_expression": "0 * * * *", "key": "rca"},
        {"task_name": "index_code", "schedule_type": "interval", "interval_seconds": 86400, "key": "index"},
    ],
    request_only=True,
)


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


def _schedule_response(schedule_id, body_of=lambda body: body) -> Response:
    """The schedule as stored now, with its ETag; ``body_of`` wraps it (toggle's envelope)."""
    schedule = _schedule_or_404(schedule_id)
    response = Response(body_of(ScheduleSerializer(schedule).data))
    response["ETag"] = services.schedule_etag(schedule)
    return response


def _service_response(service_id, status=HTTPStatus.OK, serializer=ServiceSerializer) -> Response:
    service = _service_or_404(service_id)
    response = Response(serializer(service).data, status=status)
    response["ETag"] = services.service_etag(service)
    return response


def _if_match(request) -> str | None:
    return request.headers.get("If-Match")


def _idempotent(request, write) -> Response:
    """Answer ``write()`` (a ``(status, body)``), once per ``Idempotency-Key`` when one is sent."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        status, body = write()
        return Response(body, status=status)
    if not (0 < len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH and key.isascii() and key.isprintable()):
        raise exceptions.ValidationError(
            {"Idempotency-Key": [f"1-{MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters, such as a UUID."]}
        )
    status, body, replayed = services.idempotent_call(
        actor=_actor(request),
        key=key,
        fingerprint=services.request_fingerprint(method=request.method, path=request.path, body=request.data or None),
        call=write,
    )
    response = Response(body, status=status)
    if replayed:
        response["Idempotent-Replayed"] = "true"
    return response


def _validated_items(data) -> list[dict]:
    """A bulk replace's body: a JSON array of schedule bodies, each checked as a create's."""
    if not isinstance(data, list):
        got = "an object" if isinstance(data, dict) else "null" if data is None else "a scalar"
        raise exceptions.ValidationError({"non_field_errors": [f"Expected a JSON array of schedules, got {got}."]})
    items = []
    for index, item in enumerate(data):
        serializer = ScheduleCreateSerializer(data=item)
        if not serializer.is_valid():
            detail = serializer.errors
            raise exceptions.ValidationError({f"[{index}].{name}": messages for name, messages in detail.items()})
        items.append(dict(serializer.validated_data))
    return items


# --- services -------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="List services",
        responses={200: ServiceSerializer(many=True), **errors_for(400, 401, 403)},
    ),
    create=extend_schema(
        summary="Create a service",
        request=ServiceCreateSerializer,
        parameters=[IDEMPOTENCY_KEY],
        examples=[
            OpenApiExample(
                "A service",
                value={"id": "web-app", "name": "Web application", "description": "Customer-facing storefront"},
                request_only=True,
            )
        ],
        responses={201: ServiceSerializer, **errors_for(400, 401, 403, 409, 422)},
    ),
    retrieve=extend_schema(
        summary="One service, with the last outcome of each task it schedules",
        parameters=[ETAG],
        responses={200: ServiceDetailSerializer, **errors_for(401, 403, 404)},
    ),
    update=extend_schema(
        summary="Create or replace a service (idempotent)",
        request=ServiceUpdateSerializer,
        parameters=[IF_MATCH, ETAG],
        examples=[
            OpenApiExample(
                "Register a service",
                value={"name": "Web application", "description": "Customer-facing storefront"},
                request_only=True,
            )
        ],
        responses={200: ServiceSerializer, 201: ServiceSerializer, **errors_for(400, 401, 403, 412)},
    ),
    partial_update=extend_schema(
        summary="Change a service's name or description",
        request=ServiceUpdateSerializer,
        parameters=[IF_MATCH, ETAG],
        responses={200: ServiceSerializer, **errors_for(400, 401, 403, 404, 412)},
    ),
    destroy=extend_schema(
        summary="Delete a service with its schedules",
        parameters=[IF_MATCH],
        responses={200: MessageSerializer, **errors_for(401, 403, 404, 412)},
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
        def write():
            data = _validated(ServiceCreateSerializer, request.data)
            service = services.service_create(
                actor=_actor(request),
                service_id=data["id"],
                name=data["name"],
                description=data.get("description", ""),
            )
            return HTTPStatus.CREATED, ServiceSerializer(_service_or_404(service.pk)).data

        return _idempotent(request, write)

    def retrieve(self, request, service_id):
        return _service_response(service_id, serializer=ServiceDetailSerializer)

    def update(self, request, service_id):
        if not is_service_id(service_id):
            raise exceptions.ValidationError({"id": [messages.SERVICE_ID]})
        data = _validated(ServiceUpdateSerializer, request.data)
        service, created = services.service_put(
            actor=_actor(request),
            service_id=service_id,
            name=data["name"],
            description=data.get("description", ""),
            if_match=_if_match(request),
        )
        return _service_response(service.pk, status=HTTPStatus.CREATED if created else HTTPStatus.OK)

    def partial_update(self, request, service_id):
        service = _service_or_404(service_id)
        data = _validated(ServiceUpdateSerializer, request.data, partial=True)
        services.service_update(actor=_actor(request), service=service, if_match=_if_match(request), **data)
        return _service_response(service_id)

    def destroy(self, request, service_id):
        services.service_delete(actor=_actor(request), service=_service_or_404(service_id), if_match=_if_match(request))
        return Response({"message": "Service deleted successfully"})

    @extend_schema(
        methods=["GET"],
        summary="A service's schedules (a bare array, as the seed)",
        responses={200: ScheduleSerializer(many=True), **errors_for(400, 401, 403, 404)},
    )
    @extend_schema(
        methods=["POST"],
        summary="Create a schedule for the service",
        request=ScheduleCreateSerializer,
        parameters=[IDEMPOTENCY_KEY],
        examples=[CRON_CREATE_EXAMPLE, INTERVAL_CREATE_EXAMPLE, CONFLICT_EXAMPLE],
        responses={201: ScheduleSerializer, **errors_for(400, 401, 403, 404, 409, 422)},
    )
    @extend_schema(
        methods=["PUT"],
        summary="Replace the service's schedules with this list (upsert by key or by task and timing)",
        description="Each item is a create body, optionally with a `key`. An item matches the stored schedule "
        "with its `key`, else one with the same task, timing and time zone (and no other key); matched "
        "schedules are updated when they differ, the rest created, and stored schedules no item matched "
        "deleted (`?prune=false` keeps them). One transaction, each change audited; the per-service cap "
        "applies to the resulting set. A GET's output can be sent back as is (read-only fields are ignored).",
        parameters=SCHEDULE_SET_QUERY_PARAMETERS,
        request=ScheduleCreateSerializer(many=True),
        examples=[REPLACE_EXAMPLE],
        responses={200: ScheduleSetSerializer, **errors_for(400, 401, 403, 404, 409)},
    )
    @action(detail=True, methods=["get", "post", "put"], pagination_class=None)
    def schedules(self, request, service_id):
        service = _service_or_404(service_id)
        if request.method == "GET":
            validated_query(request)
            return Response(ScheduleSerializer(selectors.schedule_list(service=service), many=True).data)
        if request.method == "PUT":
            return self._replace_schedules(request, service)

        def write():
            data = _validated(ScheduleCreateSerializer, request.data)
            schedule = services.schedule_create(actor=_actor(request), service=service, **data)
            return HTTPStatus.CREATED, _schedule_body(schedule)

        return _idempotent(request, write)

    def _replace_schedules(self, request, service):
        query = validated_query(request, ScheduleSetQuerySerializer)
        result = services.schedule_set_replace(
            actor=_actor(request),
            service=service,
            desired=_validated_items(request.data),
            prune=query["prune"],
            dry_run=query["dry_run"],
        )
        body = {
            "dry_run": result.dry_run,
            "summary": result.summary,
            "changes": [
                {"action": c.action, "schedule_id": c.schedule_id, "before": c.before, "after": c.after}
                for c in result.changes
            ],
            "schedules": selectors.schedule_list(service=service),
        }
        return Response(ScheduleSetSerializer(body).data)


# --- schedules ------------------------------------------------------------------------


UPDATE_EXAMPLES = [
    OpenApiExample("Change the cron expression", value={"cron_expression": "0 */2 * * *"}, request_only=True),
    OpenApiExample(
        "Switch to an interval", value={"schedule_type": "interval", "interval_seconds": 1800}, request_only=True
    ),
]


@extend_schema_view(
    list=extend_schema(
        summary="All schedules, filtered and paginated",
        parameters=SCHEDULE_FILTER_PARAMETERS,
        responses={200: ScheduleSerializer(many=True), **errors_for(400, 401, 403)},
    ),
    retrieve=extend_schema(
        summary="One schedule", parameters=[ETAG], responses={200: ScheduleSerializer, **errors_for(401, 403, 404)}
    ),
    update=extend_schema(
        summary="Update a schedule; only the fields given change (as the seed's PUT)",
        request=ScheduleUpdateSerializer,
        parameters=[IF_MATCH, ETAG],
        examples=UPDATE_EXAMPLES,
        responses={200: ScheduleSerializer, **errors_for(400, 401, 403, 404, 409, 412)},
    ),
    partial_update=extend_schema(
        summary="Update a schedule; only the fields given change",
        request=ScheduleUpdateSerializer,
        parameters=[IF_MATCH, ETAG],
        examples=UPDATE_EXAMPLES,
        responses={200: ScheduleSerializer, **errors_for(400, 401, 403, 404, 409, 412)},
    ),
    destroy=extend_schema(
        summary="Delete a schedule and its beat entry",
        parameters=[IF_MATCH],
        responses={200: MessageSerializer, **errors_for(401, 403, 404, 412)},
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
        return _schedule_response(id)

    def update(self, request, id):
        schedule = _schedule_or_404(id)
        data = _validated(ScheduleUpdateSerializer, request.data)
        schedule = services.schedule_update(
            actor=_actor(request), schedule=schedule, if_match=_if_match(request), **data
        )
        return _schedule_response(schedule.pk)

    partial_update = update

    def destroy(self, request, id):
        services.schedule_delete(actor=_actor(request), schedule=_schedule_or_404(id), if_match=_if_match(request))
        return Response({"message": "Schedule deleted successfully"})

    @extend_schema(
        summary="Enable or disable a schedule",
        parameters=[*TOGGLE_QUERY_PARAMETERS, IF_MATCH, ETAG],
        request=ToggleSerializer,
        examples=[OpenApiExample("Disable", value={"enabled": False}, request_only=True)],
        responses={200: ToggleResponseSerializer, **errors_for(400, 401, 403, 404, 412)},
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
        schedule = services.schedule_set_enabled(
            actor=_actor(request), schedule=schedule, enabled=given[0], if_match=_if_match(request)
        )

        def envelope(body):
            state = "enabled" if body["enabled"] else "disabled"
            return {"message": f"Schedule {state} successfully", "schedule": body}

        return _schedule_response(schedule.pk, envelope)

    @extend_schema(
        summary="Send the task now with [service_id]",
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={202: RunResponseSerializer, **errors_for(401, 403, 404, 422, 503)},
    )
    @action(detail=True, methods=["post"])
    def run(self, request, id):
        schedule = _schedule_or_404(id)

        def write():
            task_id = services.schedule_run_now(actor=_actor(request), schedule=schedule)
            return HTTPStatus.ACCEPTED, {"task_id": task_id}

        return _idempotent(request, write)

    @extend_schema(
        summary="The schedule's runs and their outcomes, newest first",
        description="Each send (by beat, under either scheduler, or a run-now) and what the workers "
        "reported: state, times, runtime, worker, retries and a failure's error. Outcomes need the "
        "run monitor (`manage.py monitor_runs`) and workers that send task events (docs/runs.md).",
        parameters=[RunFilterSerializer],
        responses={200: RunSerializer(many=True), **errors_for(400, 401, 403, 404)},
    )
    @action(detail=True, methods=["get"])
    def runs(self, request, id):
        schedule = _schedule_or_404(id)
        filters = validated_query(request, RunFilterSerializer, paginator=self.paginator)
        page = self.paginate_queryset(selectors.schedule_runs(schedule, **filters))
        return self.get_paginated_response(RunSerializer(page, many=True).data)

    @extend_schema(
        summary="The last 10 sends beat made for the schedule, newest first",
        description="An alias of the send part of `/runs` (slot, task id, sent at), kept for its callers; "
        "`/runs` has the outcomes. Recorded under either scheduler; run-now sends are included.",
        responses={200: DispatchSerializer(many=True), **errors_for(400, 401, 403, 404)},
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def dispatches(self, request, id):
        schedule = _schedule_or_404(id)
        validated_query(request)
        return Response(DispatchSerializer(selectors.schedule_recent_dispatches(schedule), many=True).data)

    @extend_schema(
        summary="The schedule's change history, newest first",
        responses={200: AuditEventSerializer(many=True), **errors_for(400, 401, 403, 404)},
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
