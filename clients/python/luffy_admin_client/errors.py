"""One exception per error the API answers, so callers catch meaning, not status codes."""

from http import HTTPStatus


class LuffyAdminError(Exception):
    """Base: ``status`` (None when the server was not reached), ``detail`` for people, ``code``
    for programs, ``body`` as answered."""

    def __init__(self, detail: str, *, status: int | None = None, code: str | None = None, body: dict | None = None):
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.code = code
        self.body = body or {}


class ValidationFailed(LuffyAdminError):
    """400: ``errors`` maps each refused field to its messages."""

    @property
    def errors(self) -> dict[str, list[str]]:
        return self.body.get("errors", {})


class AuthenticationFailed(LuffyAdminError):
    """401: no key, a wrong or revoked key, or another scheme than ``Token``."""


class PermissionDenied(LuffyAdminError):
    """403: the API key lacks the scope the call needs (``read`` for reads, ``write`` for
    changes, ``run`` for ``run_schedule``), or a staff session the model permission; ``detail``
    names it."""


class NotFound(LuffyAdminError):
    """404: ``Service not found`` / ``Schedule not found``."""


class Conflict(LuffyAdminError):
    """409: ``existing_id`` is the schedule (or service) it would duplicate, when there is one."""

    @property
    def existing_id(self) -> str | None:
        return self.body.get("existing_id")


class PreconditionFailed(LuffyAdminError):
    """412: ``if_match`` named a version that changed since; read again and retry."""


class PayloadTooLarge(LuffyAdminError):
    """413: the JSON body is larger than the server takes (``LUFFY_MAX_BODY_BYTES``, 64 KiB by
    default), e.g. a very long ``apply_schedules`` list."""


class IdempotencyKeyReused(LuffyAdminError):
    """422: the idempotency key was already used with another request."""


class RateLimited(LuffyAdminError):
    """429: ``retry_after`` seconds to wait, when the server said."""

    def __init__(self, *args, retry_after: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after


class Unavailable(LuffyAdminError):
    """503 (e.g. the broker is down on run), or the server could not be reached at all."""


BY_STATUS: dict[int, type[LuffyAdminError]] = {
    HTTPStatus.BAD_REQUEST: ValidationFailed,
    HTTPStatus.UNAUTHORIZED: AuthenticationFailed,
    HTTPStatus.FORBIDDEN: PermissionDenied,
    HTTPStatus.NOT_FOUND: NotFound,
    HTTPStatus.CONFLICT: Conflict,
    HTTPStatus.PRECONDITION_FAILED: PreconditionFailed,
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: PayloadTooLarge,
    HTTPStatus.UNPROCESSABLE_ENTITY: IdempotencyKeyReused,
    HTTPStatus.TOO_MANY_REQUESTS: RateLimited,
    HTTPStatus.SERVICE_UNAVAILABLE: Unavailable,
}
