"""Request and response rules for every path (API, admin, docs), listed in settings.MIDDLEWARE.

- Query strings with control characters (a NUL byte, ESC, ...) are refused with 400 before any
  view runs: no filter, id or search term ever needs one, and PostgreSQL refuses NUL in a
  query, which an admin changelist filter would otherwise turn into a 500.
- API responses carry ``Cache-Control: no-store``: they hold operators' data and change under
  the caller, so no proxy or browser keeps a copy.
- A database that refuses, drops or does not answer (schedules/db_waits.py) is a 503 with
  Retry-After, not a 500: JSON under /api/ (where DRF's handler did not catch it first, e.g.
  Django's 404 page), the plain ``503.html`` page elsewhere (the admin, whose session and user
  look-ups happen in its views). So is a session the database could not save after the view.
"""

import logging
import re
from http import HTTPStatus

from django import db
from django.contrib.sessions import middleware as sessions
from django.contrib.sessions.exceptions import SessionInterrupted
from django.http import HttpResponseBadRequest, JsonResponse
from django.template.response import SimpleTemplateResponse
from django.utils.cache import patch_cache_control

logger = logging.getLogger(__name__)

CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
API_PREFIX = "/api/"
QUERY_REFUSED = "The query string contains control characters; remove them."
CONTROL_CHARACTERS_REFUSED = "Control characters are not allowed."
DATABASE_UNAVAILABLE = "The database is unavailable; try again in a few seconds."
RETRY_AFTER_SECONDS = 5
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# The database refused, dropped or did not answer (schedules/db_waits.py bounds the wait).
OUTAGE_ERRORS = (db.OperationalError, db.InterfaceError)


def _refused_parameters(query) -> list[str]:
    """The parameters whose name or value holds a control character (a bad name is reported
    as ``non_field_errors``: it cannot be shown as a field)."""
    refused = []
    for key, values in query.lists():
        if CONTROL_CHARACTERS.search(key):
            refused.append("non_field_errors")
        elif any(CONTROL_CHARACTERS.search(value) for value in values):
            refused.append(key)
    return refused


class QueryStringGuardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        refused = _refused_parameters(request.GET)
        if not refused:
            return self.get_response(request)
        if request.path.startswith(API_PREFIX):
            # The API's validation error shape: the parameters by name, and one sentence.
            errors = {parameter: [CONTROL_CHARACTERS_REFUSED] for parameter in refused}
            detail = " ".join(
                CONTROL_CHARACTERS_REFUSED if parameter == "non_field_errors" else f"{parameter}: {message}"
                for parameter, messages in errors.items()
                for message in messages
            )
            return JsonResponse({"detail": detail, "code": "invalid", "errors": errors}, status=HTTPStatus.BAD_REQUEST)
        return HttpResponseBadRequest(QUERY_REFUSED, content_type="text/plain; charset=utf-8")


class ApiNoStoreMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.path.startswith(API_PREFIX):
            patch_cache_control(response, no_store=True)
        return response


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        return database_unavailable(request) if isinstance(exception, OUTAGE_ERRORS) else None


class SessionMiddleware(sessions.SessionMiddleware):
    """Django's, except for a database outage while it saves the session on the way out.

    Django answers any failed UPDATE of the session, an outage included, with a 400 saying the
    session was deleted by a concurrent request. An outage is the 503 above instead; but an
    unsafe request that succeeded keeps its answer (a 503 would invite a retry of what is done),
    and only its session write is lost.
    """

    def process_response(self, request, response):
        try:
            return super().process_response(request, response)
        except SessionInterrupted as interrupted:
            # Raised while handling UpdateError, itself raised while handling the database's error.
            if not isinstance(getattr(interrupted.__context__, "__context__", None), OUTAGE_ERRORS):
                raise
        if request.method not in SAFE_METHODS and response.status_code < HTTPStatus.BAD_REQUEST:
            logger.warning("session not saved (database unavailable) after %s %s", request.method, request.path)
            return response
        return database_unavailable(request)


def database_unavailable(request):
    if request.path.startswith(API_PREFIX):
        response = JsonResponse(
            {"detail": DATABASE_UNAVAILABLE, "code": "service_unavailable"}, status=HTTPStatus.SERVICE_UNAVAILABLE
        )
    else:
        response = SimpleTemplateResponse("503.html", status=HTTPStatus.SERVICE_UNAVAILABLE).render()
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
