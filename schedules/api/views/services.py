"""Services over REST: list, create, read, put, patch, delete, and a service's schedules (list,
create, replace)."""

from http import HTTPStatus

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import exceptions, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from ... import messages, selectors, services
from ...models import Service, TaskSchedule, is_service_id
from ..filters import (
    SCHEDULE_SET_QUERY_PARAMETERS,
    ScheduleSetQuerySerializer,
    validated_query,
)
from ..pagination import PageNumberPagination
from ..permissions import model_permission
from ..serializers import (
    MessageSerializer,
    ScheduleCreateSerializer,
    ScheduleSerializer,
    ScheduleSetSerializer,
    ServiceCreateSerializer,
    ServiceDetailSerializer,
    ServiceSerializer,
    ServiceUpdateSerializer,
    errors_for,
)
from .common import (
    ANY_SEGMENT,
    CONFLICT_EXAMPLE,
    CRON_CREATE_EXAMPLE,
    ETAG,
    IDEMPOTENCY_KEY,
    IF_MATCH,
    INTERVAL_CREATE_EXAMPLE,
    REPLACE_EXAMPLE,
    actor_of,
    idempotent,
    if_match_of,
    schedule_body,
    service_or_404,
    service_response,
    validated,
    validated_items,
)


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
            data = validated(ServiceCreateSerializer, request.data)
            service = services.service_create(
                actor=actor_of(request),
                service_id=data["id"],
                name=data["name"],
                description=data.get("description", ""),
            )
            return HTTPStatus.CREATED, ServiceSerializer(service_or_404(service.pk)).data

        return idempotent(request, write)

    def retrieve(self, request, service_id):
        return service_response(service_id, serializer=ServiceDetailSerializer)

    def update(self, request, service_id):
        if not is_service_id(service_id):
            raise exceptions.ValidationError({"id": [messages.SERVICE_ID]})
        data = validated(ServiceUpdateSerializer, request.data)
        service, created = services.service_put(
            actor=actor_of(request),
            service_id=service_id,
            name=data["name"],
            description=data.get("description", ""),
            if_match=if_match_of(request),
        )
        return service_response(service.pk, status=HTTPStatus.CREATED if created else HTTPStatus.OK)

    def partial_update(self, request, service_id):
        service = service_or_404(service_id)
        data = validated(ServiceUpdateSerializer, request.data, partial=True)
        services.service_update(actor=actor_of(request), service=service, if_match=if_match_of(request), **data)
        return service_response(service_id)

    def destroy(self, request, service_id):
        services.service_delete(
            actor=actor_of(request), service=service_or_404(service_id), if_match=if_match_of(request)
        )
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
        "applies to the resulting set. A GET's output can be sent back as is (read-only fields are ignored). "
        "With `?dry_run=true` the service need not exist yet: the answer is what creating it and then "
        "applying the list would do, checked as the real write checks it, and nothing is written.",
        parameters=SCHEDULE_SET_QUERY_PARAMETERS,
        request=ScheduleCreateSerializer(many=True),
        examples=[REPLACE_EXAMPLE],
        responses={200: ScheduleSetSerializer, **errors_for(400, 401, 403, 404, 409)},
    )
    @action(detail=True, methods=["get", "post", "put"], pagination_class=None)
    def schedules(self, request, service_id):
        if request.method == "PUT":
            return self._replace_schedules(request, service_id)
        service = service_or_404(service_id)
        if request.method == "GET":
            validated_query(request)
            return Response(ScheduleSerializer(selectors.schedule_list(service=service), many=True).data)

        def write():
            data = validated(ScheduleCreateSerializer, request.data)
            schedule = services.schedule_create(actor=actor_of(request), service=service, **data)
            return HTTPStatus.CREATED, schedule_body(schedule)

        return idempotent(request, write)

    def _replace_schedules(self, request, service_id):
        query = validated_query(request, ScheduleSetQuerySerializer)
        if query["dry_run"] and is_service_id(service_id) and selectors.service_get(service_id) is None:
            # What applying to a service about to be created would do (the CLI's apply of a new service).
            result = services.schedule_set_preview_for_new_service(
                actor=actor_of(request),
                service_id=service_id,
                name=service_id,
                description="",
                desired=validated_items(request.data),
            )
            return Response(ScheduleSetSerializer(schedule_set_body(result, schedules=[])).data)
        service = service_or_404(service_id)
        result = services.schedule_set_replace(
            actor=actor_of(request),
            service=service,
            desired=validated_items(request.data),
            prune=query["prune"],
            dry_run=query["dry_run"],
        )
        return Response(ScheduleSetSerializer(schedule_set_body(result, selectors.schedule_list(service=service))).data)


def schedule_set_body(result: services.ScheduleSetResult, schedules) -> dict:
    return {
        "dry_run": result.dry_run,
        "summary": result.summary,
        "changes": [
            {"action": c.action, "schedule_id": c.schedule_id, "before": c.before, "after": c.after}
            for c in result.changes
        ],
        "schedules": schedules,
    }
