"""Schedules over REST: list, read, update, delete, toggle, run now, runs, dispatches and history."""

import uuid
from http import HTTPStatus

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import exceptions, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from ... import selectors, services
from ...models import TaskSchedule
from ..exception_handler import SCHEDULE_NOT_FOUND
from ..filters import (
    SCHEDULE_FILTER_PARAMETERS,
    TOGGLE_QUERY_PARAMETERS,
    RunFilterSerializer,
    ScheduleFilterSerializer,
    ToggleQuerySerializer,
    validated_query,
)
from ..pagination import PageNumberPagination
from ..permissions import RUN_PERMISSION, model_permission
from ..serializers import (
    AuditEventSerializer,
    DispatchSerializer,
    MessageSerializer,
    RunResponseSerializer,
    RunSerializer,
    ScheduleSerializer,
    ScheduleUpdateSerializer,
    ToggleResponseSerializer,
    ToggleSerializer,
    errors_for,
)
from .common import (
    ANY_SEGMENT,
    ETAG,
    IDEMPOTENCY_KEY,
    IF_MATCH,
    actor_of,
    idempotent,
    if_match_of,
    schedule_or_404,
    schedule_response,
    validated,
)

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
        return schedule_response(id)

    def update(self, request, id):
        schedule = schedule_or_404(id)
        data = validated(ScheduleUpdateSerializer, request.data)
        schedule = services.schedule_update(
            actor=actor_of(request), schedule=schedule, if_match=if_match_of(request), **data
        )
        return schedule_response(schedule.pk)

    partial_update = update

    def destroy(self, request, id):
        services.schedule_delete(actor=actor_of(request), schedule=schedule_or_404(id), if_match=if_match_of(request))
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
        schedule = schedule_or_404(id)
        query = validated_query(request, ToggleQuerySerializer)
        given = [query["enabled"]] if "enabled" in query else []
        # The seed's toggle ignored its body; a client that sends `null` there still works.
        body = validated(ToggleSerializer, request.data if request.data is not None else {})
        if "enabled" in body:
            given.append(body["enabled"])
        if not given:
            raise exceptions.ValidationError(
                {"enabled": ['enabled is required: ?enabled=true|false or a body {"enabled": true}.']}
            )
        if len(given) == 2 and given[0] != given[1]:
            raise exceptions.ValidationError({"enabled": ["The query string and the body disagree."]})
        schedule = services.schedule_set_enabled(
            actor=actor_of(request), schedule=schedule, enabled=given[0], if_match=if_match_of(request)
        )

        def envelope(body):
            state = "enabled" if body["enabled"] else "disabled"
            return {"message": f"Schedule {state} successfully", "schedule": body}

        return schedule_response(schedule.pk, envelope)

    @extend_schema(
        summary="Send the task now with [service_id]",
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={202: RunResponseSerializer, **errors_for(400, 401, 403, 404, 422, 503)},
    )
    @action(detail=True, methods=["post"])
    def run(self, request, id):
        schedule = schedule_or_404(id)

        def write():
            task_id = services.schedule_run_now(actor=actor_of(request), schedule=schedule)
            return HTTPStatus.ACCEPTED, {"task_id": task_id}

        return idempotent(request, write)

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
        schedule = schedule_or_404(id)
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
        schedule = schedule_or_404(id)
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
