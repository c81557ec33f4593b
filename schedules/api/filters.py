"""Query-string parameters, checked like request bodies (HackSoft's ``FilterSerializer``).

A view checks its query string with ``validated_query(request, SomeFilterSerializer)`` and
hands the result on (to a selector, or to the write path). A parameter the endpoint does not
take (``?ordering=``, ``?search=``) is a 400 naming it, as an unknown body field is; a value
that cannot match (an unknown service or task, an ``enabled`` that is not true or false) is a
400 naming the parameter, never an empty page.
"""

from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions, serializers
from rest_framework.settings import api_settings

from .. import catalogue, load, messages, selectors, timing
from ..models import Dispatch, is_service_id


class UnknownQueryParameters(exceptions.ValidationError):
    """The query string names parameters the endpoint does not take (HTTP 400)."""

    def __init__(self, unknown: list[str], accepted: list[str]):
        hint = f"accepted: {', '.join(accepted)}." if accepted else "this endpoint takes none."
        super().__init__({name: [f"Unknown query parameter; {hint}"] for name in unknown})
        # The error body's `detail` (see exception_handler.py).
        self.summary = f"Unknown query parameter(s): {', '.join(unknown)}."


class FilterSerializer(serializers.Serializer):
    """Base of the query-string serializers; this base itself takes no parameter."""

    @classmethod
    def validated(cls, query_params, *, also_accepted: tuple[str, ...] = ()) -> dict:
        """The checked parameters, or a 400: unknown names first, then bad values.

        ``also_accepted`` names parameters read elsewhere (a paginator's ``page``). DRF's
        ``?format=`` override is accepted everywhere: it is content negotiation, not a filter.
        """
        accepted = [*cls._declared_fields, *also_accepted]
        unknown = sorted(set(query_params) - set(accepted) - {api_settings.URL_FORMAT_OVERRIDE})
        if unknown:
            raise UnknownQueryParameters(unknown, accepted)
        serializer = cls(data=query_params)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


def validated_query(request, filter_class: type[FilterSerializer] = FilterSerializer, *, paginator=None) -> dict:
    """``request``'s query string checked by ``filter_class``; a list passes its paginator,
    whose page parameters (``page``, ``page_size``) are then accepted too."""
    pages = () if paginator is None else (paginator.page_query_param, paginator.page_size_query_param)
    return filter_class.validated(request.query_params, also_accepted=tuple(name for name in pages if name))


class QueryField(serializers.Field):
    """A query parameter as sent: its raw string (the last one when repeated), blank included.

    DRF's fields read a blank form value as "not given"; here ``?enabled=`` is a value to check.
    """

    def get_value(self, dictionary):
        return dictionary.get(self.field_name, serializers.empty)

    def to_representation(self, value):
        return value


class BooleanQueryField(QueryField):
    """``true`` or ``false`` in any case, surrounding spaces ignored (the seed sends ``False``)."""

    def to_internal_value(self, data):
        value = data.strip().lower()
        if value not in ("true", "false"):
            raise serializers.ValidationError(messages.not_a_boolean(self.field_name))
        return value == "true"


class ServiceQueryField(QueryField):
    """A service id that exists; validated to the Service."""

    def to_internal_value(self, data):
        # A malformed id (a NUL byte, which PostgreSQL refuses in a query) is never looked up.
        service = selectors.service_get(data) if is_service_id(data) else None
        if service is None:
            raise serializers.ValidationError(f"Unknown service {data!r}.")
        return service


class TaskNameQueryField(QueryField):
    """A catalogue task name."""

    def to_internal_value(self, data):
        if catalogue.get_task(data) is None:
            raise serializers.ValidationError(messages.unknown_task(data))
        return data


class ScheduleFilterSerializer(FilterSerializer):
    """``GET /schedules``: the keyword arguments of ``selectors.schedule_list``."""

    service = ServiceQueryField(required=False)
    task_name = TaskNameQueryField(required=False)
    enabled = BooleanQueryField(required=False)


# How the schema documents ScheduleFilterSerializer.
SCHEDULE_FILTER_PARAMETERS = [
    OpenApiParameter("service", str, description="Only this service's schedules. Example: web-app"),
    OpenApiParameter("task_name", str, description="Only this catalogue task. Example: fetch_logs"),
    OpenApiParameter("enabled", bool, description="Only enabled (true) or disabled (false) schedules."),
]


class RunFilterSerializer(FilterSerializer):
    """``GET /schedules/{id}/runs``: the keyword arguments of ``selectors.schedule_runs``."""

    state = serializers.ChoiceField(
        choices=Dispatch.State.choices, required=False, help_text="Only runs in this state. Example: failed"
    )


class ToggleQuerySerializer(FilterSerializer):
    """``POST /schedules/{id}/toggle?enabled=false``, as the seed sends it (a JSON body works too)."""

    enabled = BooleanQueryField(required=False)


TOGGLE_QUERY_PARAMETERS = [
    OpenApiParameter("enabled", bool, description="As the seed: ?enabled=false. Or a JSON body."),
]


class CronPreviewQuerySerializer(FilterSerializer):
    """``GET /cron/preview``; the schema documents its fields as the query parameters."""

    expression = serializers.CharField(allow_blank=True, trim_whitespace=False, help_text="Example: */15 * * * *")
    timezone = serializers.CharField(default=timing.UTC, help_text="IANA time zone. Example: Europe/Paris")
    count = serializers.IntegerField(min_value=1, max_value=50, default=5, help_text="How many next runs (1-50).")
    # H fields resolve per schedule: name the schedule (service and task), or give a key.
    service_id = serializers.CharField(
        required=False, help_text="With task_name: where H lands for this service. Example: web-app"
    )
    task_name = serializers.CharField(required=False, help_text="With service_id. Example: fetch_logs")
    key = serializers.CharField(
        required=False, max_length=200, help_text="Instead of service_id and task_name: any key to hash H from."
    )

    def validate_timezone(self, value):
        if not timing.is_timezone(value):
            raise serializers.ValidationError(messages.unknown_timezone(value))
        return value

    def validate_service_id(self, value):
        # The service need not exist yet: a caller previews before registering it.
        if not is_service_id(value):
            raise serializers.ValidationError(messages.SERVICE_ID)
        return value

    def validate_task_name(self, value):
        if catalogue.get_task(value) is None:
            raise serializers.ValidationError(messages.unknown_task(value))
        return value

    def validate(self, attrs):
        given = [name for name in ("service_id", "task_name") if name in attrs]
        if len(given) == 1:
            missing = "task_name" if given == ["service_id"] else "service_id"
            raise serializers.ValidationError({missing: [f"{missing} is required with {given[0]}."]})
        if given and "key" in attrs:
            raise serializers.ValidationError({"key": ["Give key or service_id and task_name, not both."]})
        if given:
            attrs["key"] = timing.schedule_key(attrs.pop("service_id"), attrs.pop("task_name"))
        return attrs


class LoadQuerySerializer(FilterSerializer):
    """``GET /load``; the schema documents its fields as the query parameters."""

    hours = serializers.IntegerField(min_value=1, max_value=48, default=24, help_text="How far ahead (1-48).")
    resolution = serializers.ChoiceField(
        choices=list(load.RESOLUTIONS), default="minute", help_text="Bucket width: minute or hour."
    )


class ScheduleSetQuerySerializer(FilterSerializer):
    """``PUT /services/{id}/schedules?dry_run=true&prune=false``."""

    dry_run = BooleanQueryField(required=False, default=False)
    prune = BooleanQueryField(required=False, default=True)


SCHEDULE_SET_QUERY_PARAMETERS = [
    OpenApiParameter(
        "dry_run", bool, description="true: answer what the replace would do and write nothing. Default false."
    ),
    OpenApiParameter(
        "prune",
        bool,
        description="false: keep (as unchanged) stored schedules the list does not name instead of deleting them. "
        "Default true.",
    ),
]
