"""Request rates (DRF throttles): per API key, per staff user, per client address for
anonymous calls (``/health`` included) and for failed API keys.

Rates come from ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` (set from LUFFY_THROTTLE_KEY,
LUFFY_THROTTLE_USER and LUFFY_THROTTLE_ANON), read per request rather than once at import as
DRF's throttles do, so a settings change takes effect. Counts live in Django's cache: a cache
shared by every web process (LUFFY_CACHE_URL) makes them limits for the whole deployment.
"""

from rest_framework import exceptions
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle
from rest_framework_api_key.models import APIKey


class _RateFromSettings(SimpleRateThrottle):
    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES[self.scope]


class ApiKeyRateThrottle(_RateFromSettings):
    scope = "key"

    def get_cache_key(self, request, view):
        if isinstance(request.auth, APIKey):
            return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}
        return None


class SessionUserRateThrottle(_RateFromSettings):
    scope = "user"

    def get_cache_key(self, request, view):
        if request.user is not None and request.user.is_authenticated:
            return self.cache_format % {"scope": self.scope, "ident": request.user.pk}
        return None


class AnonymousRateThrottle(_RateFromSettings):
    scope = "anon"

    def get_cache_key(self, request, view):
        if request.auth is None and (request.user is None or not request.user.is_authenticated):
            return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
        return None


class FailedApiKeyThrottle(_RateFromSettings):
    """Wrong API keys from one address, counted at the anonymous rate: past it that address
    gets 429 before any key is checked, so keys cannot be guessed at full speed. Only
    failures count; a valid key from the same address is not slowed down by them."""

    scope = "anon"
    cache_format = "throttle_failed_api_key_%(ident)s"

    def get_cache_key(self, request, view):
        return self.cache_format % {"ident": self.get_ident(request)}

    def refuse_when_exhausted(self, request) -> None:
        self.key = self.get_cache_key(request, None)
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        if len(self.history) >= self.num_requests:
            raise exceptions.Throttled(self.wait())

    def record_failure(self) -> None:
        self.throttle_success()
