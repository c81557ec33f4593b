"""Services' shapes: list, detail, create and update bodies."""

from drf_spectacular.utils import (
    extend_schema_field,
)
from rest_framework import serializers

from ... import selectors
from ...models import Service
from .base import RequestSerializer, StrictCharField, UtcDateTimeField
from .schedules import OutcomeSerializer


class TaskOutcomeSerializer(OutcomeSerializer):
    failing = serializers.BooleanField(help_text="Whether one of the task's schedules is failing.")


class ServiceSerializer(serializers.ModelSerializer):
    schedule_count = serializers.IntegerField(read_only=True)
    created_at = UtcDateTimeField(read_only=True)
    updated_at = UtcDateTimeField(read_only=True)

    class Meta:
        model = Service
        fields = ["id", "name", "description", "schedule_count", "created_at", "updated_at"]
        read_only_fields = fields


class ServiceDetailSerializer(ServiceSerializer):
    """``GET /services/{id}``: the service with the last outcome of each task it schedules."""

    last_outcomes = serializers.SerializerMethodField(
        help_text="Per task the service schedules: its newest run's state and time, and whether one of its "
        "schedules is failing; null for a task that has not run yet."
    )

    class Meta(ServiceSerializer.Meta):
        fields = [*ServiceSerializer.Meta.fields, "last_outcomes"]
        read_only_fields = fields

    @extend_schema_field(serializers.DictField(child=TaskOutcomeSerializer(allow_null=True)))
    def get_last_outcomes(self, service):
        return {
            task_name: None if outcome is None else TaskOutcomeSerializer(outcome).data
            for task_name, outcome in selectors.service_last_outcomes(service).items()
        }


SERVICE_READ_ONLY_FIELDS = frozenset({"schedule_count", "created_at", "updated_at"})


class ServiceCreateSerializer(RequestSerializer):
    ignored_fields = SERVICE_READ_ONLY_FIELDS

    id = StrictCharField(help_text="Slug: lowercase letters, digits, '-' and '_'. Example: web-app")
    name = StrictCharField(help_text="Example: Web application")
    description = StrictCharField(required=False, allow_blank=True, help_text="Example: Customer-facing storefront")


class ServiceUpdateSerializer(RequestSerializer):
    """PUT body (name required) or PATCH body (all optional); the id comes from the URL."""

    ignored_fields = SERVICE_READ_ONLY_FIELDS | {"id"}

    name = StrictCharField(help_text="Example: Web application")
    description = StrictCharField(required=False, allow_blank=True, help_text="Example: Customer-facing storefront")
