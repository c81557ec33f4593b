"""Service-to-service authentication with hashed API keys (djangorestframework-api-key).

Callers send ``Authorization: Token <key>`` or ``Authorization: Api-Key <key>``; keys are
created and revoked with ``manage.py api_key``.
"""

import re

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework_api_key.models import APIKey

from .throttles import FailedApiKeyThrottle

KEYWORDS = ("Token", "Api-Key")
KEY_FORMAT = re.compile(r"[A-Za-z0-9]+\.[A-Za-z0-9]+\Z")


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].decode("latin-1") not in KEYWORDS:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Invalid Authorization header: expected '<keyword> <key>'.")
        failures = FailedApiKeyThrottle()
        failures.refuse_when_exhausted(request)
        key = header[1].decode("latin-1")
        # Keys are "<prefix>.<secret>" in letters and digits; anything else (a NUL byte, which
        # PostgreSQL refuses in a query) cannot be one, so it never reaches the database.
        api_key = None
        if KEY_FORMAT.match(key):
            # APIKey.objects.get_from_key, with the key's scopes in the same query.
            prefix = key.partition(".")[0]
            api_key = APIKey.objects.get_usable_keys().select_related("scope").filter(prefix=prefix).first()
        if api_key is None or not api_key.is_valid(key):
            failures.record_failure()
            raise exceptions.AuthenticationFailed("Invalid API key.")
        if api_key.has_expired or api_key.revoked:
            raise exceptions.AuthenticationFailed("This API key has been revoked or has expired.")
        return (None, api_key)

    def authenticate_header(self, request):
        return KEYWORDS[0]


def unknown_scheme_detail(request) -> str | None:
    """For a 401: the sentence that names the accepted schemes when the caller sent another
    (a generated client defaults to ``Bearer``, and "credentials were not provided" misleads)."""
    header = authentication.get_authorization_header(request).split()
    if not header or header[0].decode("latin-1") in KEYWORDS:
        return None
    scheme = header[0].decode("latin-1")[:20]
    return (
        f"The Authorization scheme {scheme!r} is not accepted; send 'Authorization: Token <key>' (or 'Api-Key <key>')."
    )


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema (drf-spectacular) describes ApiKeyAuthentication."""

    target_class = ApiKeyAuthentication
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": 'API key with the prefix "Token" (or "Api-Key"): `Authorization: Token <key>`. '
            "The header's value is the whole `Token <key>`: a generated client must send that prefix "
            '(openapi-python-client: `AuthenticatedClient(base_url, token=key, prefix="Token")`).',
        }
