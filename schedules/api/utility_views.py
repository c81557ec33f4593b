"""The API's utility endpoints: the task catalogue, the cron preview and ``/health``. Nothing here writes."""

from http import HTTPStatus

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import viewsets
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import catalogue, cron, health
from ..models import TaskSchedule
from .filters import CronPreviewQuerySerializer, validated_query
from .serializers import ERROR_RESPONSES, CatalogueTaskSerializer, CronPreviewSerializer, HealthSerializer


class TaskViewSet(viewsets.ViewSet):
    # What may be scheduled is part of reading schedules.
    permission_model = TaskSchedule

    @extend_schema(
        summary="The task catalogue",
        responses={200: CatalogueTaskSerializer(many=True), 400: ERROR_RESPONSES[HTTPStatus.BAD_REQUEST]},
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
            "`error`; a missing `expression`, a bad `timezone` or `count` answers 400."
        ),
        parameters=[CronPreviewQuerySerializer],
        responses={200: CronPreviewSerializer, 400: ERROR_RESPONSES[HTTPStatus.BAD_REQUEST]},
    )
    def get(self, request):
        query = validated_query(request, CronPreviewQuerySerializer)
        expression, zone = query["expression"], query["timezone"]
        try:
            parsed = cron.parse(expression)
        except cron.CronError as exc:
            preview = {
                "valid": False,
                "expression": expression,
                "description": None,
                "next_runs": [],
                "error": str(exc),
            }
        else:
            preview = {
                "valid": True,
                "expression": parsed.text,
                "description": cron.describe(parsed),
                "next_runs": cron.next_runs(parsed, zone, timezone.now(), query["count"]),
                "error": None,
            }
        return Response(CronPreviewSerializer(preview).data)


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
