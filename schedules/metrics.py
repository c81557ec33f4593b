"""``/metrics``: Prometheus text format, read from the database at each scrape.

A custom collector (prometheus_client's ``Collector``) queries the run records, schedules and
heartbeats when scraped, instead of counting in the process: every gunicorn worker then answers
the same, and nothing is lost on a restart. Reads go through selectors; labels are bounded (task,
queue, state). docs/runs.md lists the metrics.
"""

from django.conf import settings
from django.http import HttpResponse
from django.urls import re_path
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from rest_framework.permissions import BasePermission
from rest_framework.views import APIView

from . import selectors
from .api.permissions import IsStaffOrApiKey
from .beat.lock import LOCK_KEY

LATENESS_BUCKETS = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)
DURATION_BUCKETS = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0)


def _histogram(name: str, documentation: str, measure: str, buckets: tuple[float, ...]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, documentation, labels=["task"])
    for task, (cumulative, count, total) in sorted(selectors.run_histogram(measure, buckets).items()):
        family.add_metric(
            [task],
            [(str(bound), hits) for bound, hits in zip(buckets, cumulative, strict=True)] + [("+Inf", count)],
            total,
        )
    return family


def _age(moment) -> float | None:
    return None if moment is None else max((timezone.now() - moment).total_seconds(), 0.0)


class RunCollector(Collector):
    def collect(self):
        runs = GaugeMetricFamily(
            "luffy_runs",
            "Runs recorded (within the retention window), by task, queue and state.",
            labels=["task", "queue", "state"],
        )
        for task, queue, state, count in sorted(selectors.run_counts()):
            runs.add_metric([task, queue, state], count)
        yield runs
        yield _histogram(
            "luffy_run_lateness_seconds", "Sent minus slot of the runs kept.", "lateness", LATENESS_BUCKETS
        )
        yield _histogram(
            "luffy_run_duration_seconds", "Runtime of the finished runs kept.", "runtime", DURATION_BUCKETS
        )

        schedules = GaugeMetricFamily("luffy_schedules", "Schedules by task and state.", labels=["task", "state"])
        for task, enabled, count in sorted(selectors.schedule_counts()):
            schedules.add_metric([task, "enabled" if enabled else "disabled"], count)
        yield schedules
        failing = GaugeMetricFamily(
            "luffy_schedules_failing", "Schedules whose newest finished run failed.", labels=["task"]
        )
        for task, count in sorted(selectors.failing_schedule_counts().items()):
            failing.add_metric([task], count)
        yield failing

        beat = selectors.beat_heartbeat_get()
        monitor = selectors.monitor_heartbeat_get()
        for name, documentation, value in (
            ("luffy_beat_heartbeat_age_seconds", "Age of beat's last heartbeat.", _age(beat and beat.received_at)),
            (
                "luffy_monitor_heartbeat_age_seconds",
                "Age of the run monitor's last heartbeat.",
                _age(monitor and monitor.seen_at),
            ),
            (
                "luffy_monitor_lag_seconds",
                "Age of the newest event of the monitor's last batch when written.",
                monitor and monitor.lag_seconds,
            ),
            (
                "luffy_beat_leader",
                "1 while a fleet beat holds the leader lock (PostgreSQL).",
                selectors.beat_leader_held(LOCK_KEY),
            ),
        ):
            if value is not None:  # never recorded: absent, so `absent()` alerts can fire
                yield GaugeMetricFamily(name, documentation, value=float(value))


class FromAllowedAddress(BasePermission):
    """A client address listed in LUFFY_METRICS_ALLOW_IPS (a Prometheus server without a key)."""

    def has_permission(self, request, view):
        return request.META.get("REMOTE_ADDR") in settings.LUFFY_METRICS_ALLOW_IPS


class MetricsView(APIView):
    permission_classes = [IsStaffOrApiKey | FromAllowedAddress]

    @extend_schema(exclude=True)
    def get(self, request):
        registry = CollectorRegistry(auto_describe=False)
        registry.register(RunCollector())
        return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


urlpatterns = [re_path(r"^metrics/?$", MetricsView.as_view(), name="metrics")]
