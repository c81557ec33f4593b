"""Request and response rules for every path (API, admin, docs), listed in settings.MIDDLEWARE.

- Query strings with control characters (a NUL byte, ESC, ...) are refused with 400 before any
  view runs: no filter, id or search term ever needs one, and PostgreSQL refuses NUL in a
  query, which an admin changelist filter would otherwise turn into a 500.
- API responses carry ``Cache-Control: no-store``: they hold operators' data and change under
  the caller, so no proxy or browser keeps a copy.
"""

import re
from http import HTTPStatus

from django.http import HttpResponseBadRequest, JsonResponse
from django.utils.cache import patch_cache_control

CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
API_PREFIX = "/api/"
QUERY_REFUSED = "The query string contains control characters; remove them."


def _has_control_characters(query) -> bool:
    return any(CONTROL_CHARACTERS.search(text) for key, values in query.lists() for text in (key, *values))


class QueryStringGuardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if _has_control_characters(request.GET):
            if request.path.startswith(API_PREFIX):
                return JsonResponse({"detail": QUERY_REFUSED, "code": "invalid"}, status=HTTPStatus.BAD_REQUEST)
            return HttpResponseBadRequest(QUERY_REFUSED, content_type="text/plain; charset=utf-8")
        return self.get_response(request)


class ApiNoStoreMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.path.startswith(API_PREFIX):
            patch_cache_control(response, no_store=True)
        return response
