"""What the views share: the optional headers and examples the schema documents, look-ups that
answer 404, responses with their ETag, and Idempotency-Key replays."""

from http import HTTPStatus

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework_api_key.models import APIKey

from ... import selectors, services
from ...models import is_service_id
from ..exception_handler import SCHEDULE_NOT_FOUND, SERVICE_NOT_FOUND
from ..serializers import (
    ScheduleCreateSerializer,
    ScheduleSerializer,
    ServiceSerializer,
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


def actor_of(request) -> services.Actor:
    if isinstance(request.auth, APIKey):
        return services.Actor.for_api_key(request.auth)
    return services.Actor.for_user(request.user)


def validated(serializer_class, data, *, partial: bool = False) -> dict:
    serializer = serializer_class(data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def service_or_404(service_id):
    # Checked before any query: an id that cannot exist (a NUL byte, which PostgreSQL refuses
    # in a query) is simply not found.
    service = selectors.service_list().filter(pk=service_id).first() if is_service_id(service_id) else None
    if service is None:
        raise exceptions.NotFound(SERVICE_NOT_FOUND)
    return service


def schedule_or_404(schedule_id):
    schedule = selectors.schedule_get(schedule_id)
    if schedule is None:
        raise exceptions.NotFound(SCHEDULE_NOT_FOUND)
    return schedule


def schedule_body(schedule) -> dict:
    """The schedule as stored after a write (re-read so it shows what beat sees)."""
    return ScheduleSerializer(schedule_or_404(schedule.pk)).data


def schedule_response(schedule_id, body_of=lambda body: body) -> Response:
    """The schedule as stored now, with its ETag; ``body_of`` wraps it (toggle's envelope)."""
    schedule = schedule_or_404(schedule_id)
    response = Response(body_of(ScheduleSerializer(schedule).data))
    response["ETag"] = services.schedule_etag(schedule)
    return response


def service_response(service_id, status=HTTPStatus.OK, serializer=ServiceSerializer) -> Response:
    service = service_or_404(service_id)
    response = Response(serializer(service).data, status=status)
    response["ETag"] = services.service_etag(service)
    return response


def if_match_of(request) -> str | None:
    return request.headers.get("If-Match")


def idempotent(request, write) -> Response:
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
        actor=actor_of(request),
        key=key,
        fingerprint=services.request_fingerprint(method=request.method, path=request.path, body=request.data or None),
        call=write,
    )
    response = Response(body, status=status)
    if replayed:
        response["Idempotent-Replayed"] = "true"
    return response


def validated_items(data) -> list[dict]:
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
