"""What the app says when it refuses a value, each sentence written once.

The write path (``services/``, ``timing.py``), the model's validator, and the API's filters
and serializers all refuse with these, so a caller reads the same words whichever way a value
came in (request body, query string, admin form).
"""

from . import catalogue

SCHEDULE_KEY = "A schedule key is 1-100 characters: letters, digits, '.', '-' and '_', starting with a letter or digit."
SERVICE_ID = "A service id is 1-63 characters: lowercase letters, digits, '-' and '_', starting with a letter or digit."


def unknown_task(name) -> str:
    return f"{name!r} is not a catalogue task; choose one of {', '.join(catalogue.task_names())}."


def not_a_boolean(field: str) -> str:
    return f"{field} must be true or false."


def unknown_timezone(name) -> str:
    return f"{name!r} is not an IANA time zone name such as 'Europe/Paris'."
