"""Services and their schedules from and to a schedules file (the format of ``luffy-admin apply``).

    python manage.py schedules apply -f schedules.yaml [--dry-run] [--prune]
    python manage.py schedules export [--service web-app] [-o schedules.yaml]

``apply`` writes through the same write path as the API and prints the same diff as the CLI.
"""

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from schedules import schedules_file, selectors, services
from schedules.errors import ScheduleError


class Command(BaseCommand):
    help = "Apply a schedules file to the database, or export the database as one."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        apply = actions.add_parser("apply", help="Make the database hold the file's services and schedules.")
        apply.add_argument("-f", "--file", required=True, help="The schedules file (YAML).")
        apply.add_argument("--dry-run", action="store_true", help="Print what would change; change nothing.")
        apply.add_argument(
            "--prune", action="store_true", help="Delete the listed services' schedules the file does not list."
        )
        export = actions.add_parser("export", help="Print the services and schedules as a schedules file.")
        export.add_argument("--service", help="Only this service.")
        export.add_argument("-o", "--output", help="File to write (default: stdout).")

    def handle(self, *args, action, **options):
        getattr(self, f"_{action}")(**options)

    def _apply(self, *, file, dry_run, prune, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"No file {file!r}.")
        try:
            entries = schedules_file.parse(path.read_text(), source=file)
        except schedules_file.FileError as exc:
            raise CommandError(str(exc)) from None
        try:
            lines = schedules_file.apply(
                actor=services.Actor.system("manage.py schedules apply"), entries=entries, prune=prune, dry_run=dry_run
            )
        except ValidationError as exc:
            # Services before the refused one are applied, as with `luffy-admin apply`.
            by_field = exc.message_dict if hasattr(exc, "error_dict") else {"": exc.messages}
            raise CommandError(
                " ".join(f"{field}: {message}" for field, messages in by_field.items() for message in messages)
            ) from None
        except ScheduleError as exc:
            raise CommandError(exc.detail) from None
        for line in lines:
            self.stdout.write(line)

    def _export(self, *, service, output, **options):
        if service is not None and selectors.service_get(service) is None:
            raise CommandError(f"No service {service!r}.")
        text = schedules_file.export(service_id=service)
        if output:
            Path(output).write_text(text)
        else:
            self.stdout.write(text, ending="")
