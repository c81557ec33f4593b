"""The task catalogue, the cron preview, /health and /load."""

from rest_framework import serializers

from .base import UtcDateTimeField


class CatalogueTaskSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="Example: fetch_logs")
    task_path = serializers.CharField(source="task", help_text="Example: src.services.tasks.fetch_and_process_logs")
    queue = serializers.CharField(help_text="Example: default")
    description = serializers.CharField()
    min_interval_seconds = serializers.IntegerField(help_text="Example: 60")
    max_interval_seconds = serializers.IntegerField(help_text="Example: 86400")
    default_cron_expression = serializers.CharField(
        allow_null=True,
        help_text="What a schedule created without any timing runs, if set; H spreads services. Example: H/15 * * * *",
    )


class CronPreviewSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    expression = serializers.CharField(help_text="Normalised when valid (H fields kept), as given otherwise.")
    resolved_expression = serializers.CharField(
        allow_null=True, help_text="The plain crontab beat would run (H resolved); null when not valid."
    )
    description = serializers.CharField(allow_null=True, help_text="Example: Every 15 minutes")
    next_runs = serializers.ListField(child=UtcDateTimeField())
    error = serializers.CharField(allow_null=True, help_text="Why the expression is refused, when it is.")


# One enum each in the schema (SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]): the database and
# broker checks; beat's and the run monitor's heartbeats.
UP_DOWN = ["ok", "down"]
LIVENESS = ["ok", "stale", "unknown"]


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=["ok", "degraded", "down"],
        help_text="down: the database is unreachable; degraded: the database is up but the broker is down or "
        "beat's heartbeat is stale; ok otherwise.",
    )
    database = serializers.ChoiceField(choices=UP_DOWN)
    broker = serializers.ChoiceField(choices=UP_DOWN)
    beat = serializers.ChoiceField(
        choices=LIVENESS,
        help_text="ok: a heartbeat ran recently; stale: the last one is too old; unknown: none recorded yet.",
    )
    monitor = serializers.ChoiceField(
        choices=LIVENESS,
        help_text="The run monitor (manage.py monitor_runs): ok, stale or unknown, as for beat.",
    )


class LoadBucketSerializer(serializers.Serializer):
    at = UtcDateTimeField(help_text="Start of the bucket. Example: 2026-01-31T12:15:00+00:00")
    total = serializers.IntegerField(help_text="Sends in the bucket. Example: 1000")
    by_task = serializers.DictField(child=serializers.IntegerField(), help_text='Example: {"fetch_logs": 1000}')


class LoadSecondSerializer(serializers.Serializer):
    second = serializers.IntegerField(help_text="Second of the busiest minute (0-59).")
    total = serializers.IntegerField()
    by_task = serializers.DictField(child=serializers.IntegerField())


class LoadSerializer(serializers.Serializer):
    start = UtcDateTimeField(help_text="Now, to the minute.")
    end = UtcDateTimeField()
    resolution = serializers.CharField(help_text="minute or hour")
    tasks = serializers.ListField(child=serializers.CharField(), help_text="Tasks with enabled schedules.")
    schedules = serializers.IntegerField(help_text="Enabled schedules counted.")
    distinct_timings = serializers.IntegerField(help_text="Distinct timings their slots were computed for.")
    buckets = LoadBucketSerializer(many=True, help_text="Buckets with at least one send, in time order.")
    busiest = LoadBucketSerializer(many=True, help_text="The busiest minutes (up to 5), busiest first.")
    busiest_minute_seconds = LoadSecondSerializer(
        many=True, help_text="The busiest minute second by second (seconds with a send)."
    )
