"""Create, list and revoke the API keys service-to-service callers send.

Keys are stored hashed (djangorestframework-api-key); the key itself is printed once, at
creation. The key's name is what the audit trail records (``api-key:<name>``), so two
usable keys never share a name. Each key has scopes (``read``, ``write``, ``run``; write
implies read, nothing implies run); ``--scope`` defaults to ``read``, the least a key can do.
"""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from rest_framework_api_key.models import APIKey

from schedules import services
from schedules.models import ApiKeyScope


class Command(BaseCommand):
    help = "Manage API keys: create <name> [--scope read|write|run ...] | list | revoke <prefix>."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="Create a key and print it (shown only this once).")
        create.add_argument("name", help="Who uses the key, as the audit trail will show it. Example: fastapi")
        create.add_argument(
            "--scope",
            action="append",
            dest="scopes",
            metavar="SCOPE",
            help="read, write (implies read) or run (send a task now); repeat it or give a comma list. "
            "Default: read. Example: --scope write,run",
        )
        actions.add_parser("list", help="List keys: prefix, created, state, scopes, name.")
        revoke = actions.add_parser("revoke", help="Revoke a key for good.")
        revoke.add_argument("prefix", help="The key's prefix, as `list` shows it (the part before the dot).")

    def handle(self, *args, action, **options):
        getattr(self, f"_{action}")(**options)

    def _create(self, *, name, scopes, **options):
        name = name.strip()
        if not name:
            raise CommandError("A key needs a name.")
        if APIKey.objects.get_usable_keys().filter(name=name).exists():
            raise CommandError(f"A usable key named {name!r} exists; revoke it first or pick another name.")
        wanted = {scope.strip() for given in scopes or [ApiKeyScope.READ] for scope in given.split(",")}
        try:
            api_key, key = services.api_key_create(name=name, scopes=wanted)
        except ValidationError as exc:
            raise CommandError(exc.messages[0]) from None
        self.stdout.write(
            f"Created API key {api_key.prefix} for {name!r} with scopes {api_key.scope}. "
            "Send it as 'Authorization: Token <key>':"
        )
        self.stdout.write(key)

    def _list(self, **options):
        keys = APIKey.objects.select_related("scope").order_by("created")
        if not keys:
            self.stdout.write("No API keys.")
            return
        for api_key in keys:
            state = "revoked" if api_key.revoked else "expired" if api_key.has_expired else "active"
            scopes = str(getattr(api_key, "scope", "none"))
            self.stdout.write(
                f"{api_key.prefix}  {api_key.created:%Y-%m-%d %H:%M}  {state:8}  {scopes:14}  {api_key.name}"
            )

    def _revoke(self, *, prefix, **options):
        api_key = APIKey.objects.filter(prefix=prefix).first()
        if api_key is None:
            raise CommandError(f"No API key with prefix {prefix!r} (see `manage.py api_key list`).")
        if api_key.revoked:
            self.stdout.write(f"API key {prefix} ({api_key.name!r}) was already revoked.")
            return
        api_key.revoked = True
        api_key.save(update_fields=["revoked"])
        self.stdout.write(f"Revoked API key {prefix} ({api_key.name!r}).")
