"""The API's utility endpoints: the task catalogue, the cron preview and ``/health``. Nothing here writes."""

from http import HTTPStatus

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import viewsets
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from ... import catalogue, cron, health, selectors
from ...models import TaskSchedule
from ..filters import CronPreviewQuerySerializer, LoadQuerySerializer, validated_query
from ..serializers import (
    CatalogueTaskSerializer,
    CronPreviewSerializer,
    HealthSerializer,
    LoadSerializer,
    errors_for,
)


class TaskViewSet(viewsets.ViewSet):
    # What may be scheduled is part of reading schedules.
    permission_model = TaskSchedule

    @extend_schema(
        summary="The task catalogue",
        responses={200: CatalogueTaskSerializer(many=True), **errors_for(400, 401, 403)},
    )
    def list(self, request):
        validated_query(request)
        tasks = [catalogue.get_task(name) for name in catalogue.task_names()]
        return Response(CatalogueTaskSerializer(tasks, many=True).data)


class CronPreviewView(APIView):
    permission_model = TaskSchedule

    @extend_schema(
        summary="Check a cron expression: valid or why not, in words, next run times",
        description=(
            "An expression that is not valid answers 200 with `valid: false` and the reason in "
            "`error`; a missing `expression`, a bad `timezone` or `count` answers 400. `H` fields "
            "resolve for `service_id` + `task_name` (or `key`); without them `H` is not valid."
        ),
        parameters=[CronPreviewQuerySerializer],
        responses={200: CronPreviewSerializer, **errors_for(400, 401, 403)},
    )
    def get(self, request):
        query = validated_query(request, CronPreviewQuerySerializer)
        expression, zone = query["expression"], query["timezone"]
        try:
            parsed, written = cron.resolve(expression, query.get("key"))
        except cron.CronError as exc:
            preview = {
                "valid": False,
                "expression": expression,
                "resolved_expression": None,
                "description": None,
                "next_runs": [],
                "error": str(exc),
            }
        else:
            preview = {
                "valid": True,
                "expression": written or parsed.text,
                "resolved_expression": parsed.text,
                "description": cron.describe(parsed),
                "next_runs": cron.next_runs(parsed, zone, timezone.now(), query["count"]),
                "error": None,
            }
        return Response(CronPreviewSerializer(preview).data)


class LoadView(APIView):
    permission_model = TaskSchedule

    @extend_schema(
        summary="Upcoming load: sends per minute (or hour) ahead, stacked by task",
        description=(
            "Enabled schedules, grouped by distinct timing. Names the busiest minutes and splits the "
            "busiest one by second. An interval's first send after a change may fall one period later "
            "than counted here."
        ),
        parameters=[LoadQuerySerializer],
        responses={200: LoadSerializer, **errors_for(400, 401, 403)},
    )
    def get(self, request):
        query = validated_query(request, LoadQuerySerializer)
        return Response(LoadSerializer(selectors.upcoming_load(**query)).data)


class HealthView(APIView):
    # Anonymous on purpose (load balancers, compose health checks); it tells status only.
    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        summary="Database, broker and beat liveness (anonymous)",
        auth=[],
        responses={200: HealthSerializer, 503: OpenApiResponse(HealthSerializer, description="Database down.")},
    )
    def get(self, request):
        report = health.health_report()
        status = HTTPStatus.SERVICE_UNAVAILABLE if report["database"] == health.DOWN else HTTPStatus.OK
        return Response(report, status=status)
