"""The app's own errors. The write path raises them; the API and the admin translate them.

Django's ``ValidationError`` (by field) stays the error for bad input, as the admin's forms
expect; these cover what is not a field's fault.
"""


class ScheduleError(Exception):
    """Base of the errors the write path raises on purpose; ``detail`` is for a person."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class ConflictError(ScheduleError):
    """The change would duplicate something that exists (HTTP 409).

    ``existing_id`` names the resource it would duplicate, when there is one.
    """

    def __init__(self, detail: str, *, existing_id=None):
        super().__init__(detail)
        self.existing_id = existing_id


class BrokerUnavailable(ScheduleError):
    """The task broker did not take a message; nothing was sent (HTTP 503)."""

    def __init__(self, detail: str = "The task broker is unreachable; nothing was sent. Try again later."):
        super().__init__(detail)


class PreconditionFailed(ScheduleError):
    """The caller's ``If-Match`` names a version that is no longer current (HTTP 412)."""

    def __init__(self, detail: str, *, current_etag: str):
        super().__init__(detail)
        self.current_etag = current_etag


class IdempotencyKeyReused(ScheduleError):
    """An ``Idempotency-Key`` sent again with a different request (HTTP 422)."""

    def __init__(
        self,
        detail: str = (
            "This Idempotency-Key was already used with a different request; use a new key for a new request."
        ),
    ):
        super().__init__(detail)
