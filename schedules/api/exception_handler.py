"""The API's one exception handler: every error body is ``{"detail", "code", "errors"?}``.

``detail`` is a sentence a person can read (the FastAPI front end shows it as is);
validation errors add ``errors: {field: [messages]}``. The write path's own errors
(``schedules/errors.py``) map here too: Django's ``ValidationError`` -> 400,
``ConflictError`` -> 409 (with ``existing_id`` when it names one), ``PreconditionFailed``
-> 412, ``IdempotencyKeyReused`` -> 422, ``BrokerUnavailable`` -> 503, a row deleted under the request -> 404;
a database that refuses or does not answer -> 503 ``service_unavailable`` with Retry-After.
Anything else is left to Django, which logs it and answers 500. ``page_not_found`` and
``server_error`` are the project's handler404 / handler500, JSON under ``/api/``.
"""

from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.views import defaults
from kombu.exceptions import OperationalError as BrokerError
from rest_framework import exceptions, status
from rest_framework.views import exception_handler

from .. import errors
from ..middleware import DATABASE_UNAVAILABLE, OUTAGE_ERRORS, RETRY_AFTER_SECONDS
from ..models import Service, TaskSchedule
from .authentication import unknown_scheme_detail
from .parsers import PayloadTooLarge

NON_FIELD_KEY = "non_field_errors"
# The seed's 404 bodies, which its front end shows.
SERVICE_NOT_FOUND = "Service not found"
SCHEDULE_NOT_FOUND = "Schedule not found"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"

    def __init__(self, detail, *, existing_id=None):
        super().__init__(detail)
        self.existing_id = existing_id


class PreconditionFailed(exceptions.APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_code = "precondition_failed"

    def __init__(self, detail, *, current_etag=None):
        super().__init__(detail)
        self.current_etag = current_etag


class IdempotencyKeyReused(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "idempotency_key_reused"


class DatabaseUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "service_unavailable"
    default_detail = DATABASE_UNAVAILABLE


class BrokerUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "broker_unavailable"
    default_detail = errors.BrokerUnavailable().detail


def _translate(exc):
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            by_field = {
                NON_FIELD_KEY if field == NON_FIELD_ERRORS else field: messages
                for field, messages in exc.message_dict.items()
            }
        else:
            by_field = {NON_FIELD_KEY: exc.messages}
        return exceptions.ValidationError(by_field)
    if isinstance(exc, errors.ConflictError):
        return Conflict(exc.detail, existing_id=exc.existing_id)
    if isinstance(exc, errors.PreconditionFailed):
        return PreconditionFailed(exc.detail, current_etag=exc.current_etag)
    if isinstance(exc, errors.IdempotencyKeyReused):
        return IdempotencyKeyReused(exc.detail)
    if isinstance(exc, errors.BrokerUnavailable):
        return BrokerUnavailable(exc.detail)
    # Deleted by a concurrent request between the view's look-up and the write path's lock.
    if isinstance(exc, TaskSchedule.DoesNotExist):
        return exceptions.NotFound(SCHEDULE_NOT_FOUND)
    if isinstance(exc, Service.DoesNotExist):
        return exceptions.NotFound(SERVICE_NOT_FOUND)
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge()
    if isinstance(exc, BrokerError):
        return BrokerUnavailable()
    if isinstance(exc, OUTAGE_ERRORS):
        return DatabaseUnavailable()
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, PermissionDenied):
        return exceptions.PermissionDenied()
    return exc


def _messages(detail) -> list[str]:
    """Flatten a DRF error detail (string, list or dict, possibly nested) into strings."""
    if isinstance(detail, dict):
        return [message for value in detail.values() for message in _messages(value)]
    if isinstance(detail, list):
        return [message for value in detail for message in _messages(value)]
    return [str(detail)]


def _validation_body(exc: exceptions.ValidationError) -> dict:
    detail = exc.detail if isinstance(exc.detail, dict) else {NON_FIELD_KEY: exc.detail}
    by_field = {field: _messages(value) for field, value in detail.items()}
    summary = " ".join(
        message if field == NON_FIELD_KEY else f"{field}: {message}"
        for field, messages in by_field.items()
        for message in messages
    )
    # An error may bring its own sentence (UnknownQueryParameters does).
    summary = getattr(exc, "summary", None) or summary
    return {"detail": summary or "Invalid input.", "code": "invalid", "errors": by_field}


def api_exception_handler(exc, context):
    exc = _translate(exc)
    if isinstance(exc, exceptions.NotAuthenticated) and "request" in context:
        # In place: DRF has put the WWW-Authenticate value on this exception.
        detail = unknown_scheme_detail(context["request"])
        if detail is not None:
            exc.detail = exceptions.ErrorDetail(detail, code=exc.default_code)
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, DatabaseUnavailable):
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    if isinstance(exc, exceptions.ValidationError):
        response.data = _validation_body(exc)
    else:
        response.data = {
            "detail": " ".join(_messages(exc.detail)),
            "code": exc.detail.code if isinstance(exc.detail, exceptions.ErrorDetail) else exc.default_code,
        }
        # A conflict names what it conflicts with, for programs (the sentence says it for people).
        if getattr(exc, "existing_id", None) is not None:
            response.data["existing_id"] = str(exc.existing_id)
        # A 412 says which version is current, so a caller can re-read only if it must.
        if getattr(exc, "current_etag", None) is not None:
            response["ETag"] = exc.current_etag
    return response


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def page_not_found(request, exception):
    """Django's 404 for paths no route matches: JSON under /api/, the usual page elsewhere."""
    if _is_api(request):
        return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=status.HTTP_404_NOT_FOUND)
    return defaults.page_not_found(request, exception)


def server_error(request):
    """Django's 500 (the error is logged first): JSON under /api/, the usual page elsewhere."""
    if _is_api(request):
        return JsonResponse(
            {"detail": "Server error.", "code": "server_error"}, status=status.HTTP_500_INTERNAL_SERVER_ERROR
        )
    return defaults.server_error(request)
