"""API keys and their scopes."""

from django.core.exceptions import ValidationError
from django.db import transaction
from rest_framework_api_key.models import APIKey

from ..models import ApiKeyScope


@transaction.atomic
def api_key_create(*, name: str, scopes: set[str]) -> tuple[APIKey, str]:
    """A new key with its scopes; returns the stored key and the key itself (shown once).

    ``write`` implies ``read`` and is stored so; ``run`` is granted only when named.
    """
    unknown = scopes - set(ApiKeyScope.NAMES)
    if unknown or not scopes:
        raise ValidationError(f"Scopes are {', '.join(ApiKeyScope.NAMES)}; got {', '.join(sorted(unknown)) or 'none'}.")
    api_key, key = APIKey.objects.create_key(name=name)
    ApiKeyScope.objects.create(
        api_key=api_key,
        read=bool(scopes & {ApiKeyScope.READ, ApiKeyScope.WRITE}),
        write=ApiKeyScope.WRITE in scopes,
        run=ApiKeyScope.RUN in scopes,
    )
    return api_key, key
