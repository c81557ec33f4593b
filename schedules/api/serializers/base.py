"""What every API shape shares: strict fields, request serializers that refuse unknown fields, error bodies."""

from datetime import UTC
from http import HTTPStatus

from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema_serializer,
)
from rest_framework import serializers


class UtcDateTimeField(serializers.DateTimeField):
    """ISO 8601 in UTC with an explicit offset: ``2026-01-31T09:15:00+00:00``."""

    def to_representation(self, value):
        return value.astimezone(UTC).isoformat() if value is not None else None


class StrictCharField(serializers.CharField):
    """A JSON string and nothing else (DRF's CharField turns ``5`` into ``"5"``)."""

    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class _PassThrough:
    """Hands the JSON value on untouched; the write path checks its type and value."""

    def to_internal_value(self, data):
        return data


class RawChar(_PassThrough, serializers.CharField):
    pass


class RawInteger(_PassThrough, serializers.IntegerField):
    pass


class RawBoolean(_PassThrough, serializers.BooleanField):
    pass


class RawChoice(_PassThrough, serializers.ChoiceField):
    pass


JSON_TYPE_NAMES = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}


class RequestSerializer(serializers.Serializer):
    """A request body: a JSON object; unknown fields refused, read-only fields ignored."""

    ignored_fields: frozenset[str] = frozenset()

    def run_validation(self, data=serializers.empty):
        if data is None:  # DRF would answer "This field may not be null."
            self._refuse_non_object(data)
        return super().run_validation(data)

    @staticmethod
    def _refuse_non_object(data):
        got = JSON_TYPE_NAMES.get(type(data), "null")
        raise serializers.ValidationError({"non_field_errors": [f"Expected a JSON object, got {got}."]})

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self._refuse_non_object(data)
        accepted = ", ".join(self.fields)
        unknown = sorted(set(data) - set(self.fields) - self.ignored_fields)
        if unknown:
            raise serializers.ValidationError(
                {name: [f"Unknown field; accepted fields are: {accepted}."] for name in unknown}
            )
        return super().to_internal_value({key: value for key, value in data.items() if key in self.fields})


# The schema's description of this component still names the handler's old home: the layout
# change that moved it leaves schema.yml as it was. Drop the override when the schema may change.
@extend_schema_serializer(description="Every error body (see luffy_admin/exception_handler.py).")
class ErrorSerializer(serializers.Serializer):
    """Every error body (see schedules/api/exception_handler.py)."""

    detail = serializers.CharField(help_text="For people. Example: Schedule not found")
    code = serializers.CharField(help_text="For programs. Example: not_found")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Validation errors only: messages per field; a bulk replace names an item's field "
        "`[2].cron_expression`.",
    )
    existing_id = serializers.CharField(
        required=False,
        help_text="Conflicts only: the id of the schedule (or service) the request would duplicate. "
        "Example: 0d5f7b7e-8a55-4a43-9d2a-3c1e0b6f2a10",
    )


# What each error status means, as the schema documents it; `errors_for` picks an operation's.
ERROR_DESCRIPTIONS = {
    HTTPStatus.BAD_REQUEST: "Invalid input; `errors` per field.",
    HTTPStatus.UNAUTHORIZED: "No or invalid credentials; `detail` names the accepted schemes when another was sent.",
    HTTPStatus.FORBIDDEN: "The staff user lacks the model permission, or the API key the scope, named in `detail`.",
    HTTPStatus.NOT_FOUND: "`Service not found` / `Schedule not found`.",
    HTTPStatus.CONFLICT: "It would duplicate a schedule or service (`existing_id` names it), or exceed the "
    "per-service schedule cap.",
    HTTPStatus.PRECONDITION_FAILED: "`If-Match` does not name the current version (ETag): someone changed it since "
    "you read it. The answer's `ETag` header is the current one.",
    HTTPStatus.UNPROCESSABLE_ENTITY: "The `Idempotency-Key` was already used with a different request.",
    HTTPStatus.SERVICE_UNAVAILABLE: "The task broker is unreachable; nothing was sent.",
}


def errors_for(*statuses: HTTPStatus) -> dict:
    """The error answers an operation can give, for ``extend_schema(responses=...)``."""
    return {status: OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS[status]) for status in statuses}
