"""What the admin tests share: page addresses and the posts a browser would send."""

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages

SERVICES_URL = "/admin/schedules/service/"
SCHEDULES_URL = "/admin/schedules/taskschedule/"
AUDIT_EVENTS_URL = "/admin/schedules/auditevent/"
CRONTABS_URL = "/admin/django_celery_beat/crontabschedule/"
INTERVALS_URL = "/admin/django_celery_beat/intervalschedule/"
PERIODIC_TASKS_URL = "/admin/django_celery_beat/periodictask/"


def shown_messages(response) -> list[str]:
    """The messages the page shows the operator (success, warning, error)."""
    return [message.message for message in get_messages(response.wsgi_request)]


def errors_on_form(response) -> dict:
    """The admin form's errors by field, '__all__' for the ones above the form."""
    return {field: list(errors) for field, errors in response.context["adminform"].form.errors.items()}


def schedule_post(service_id="web-app", **fields) -> dict:
    """The schedule form as posted; a field set to None is left out, as an unticked box is."""
    data = {
        "service": service_id,
        "task_name": "fetch_logs",
        "schedule_type": "cron",
        "cron_expression": "*/15 * * * *",
        "interval_seconds": "",
        "timezone": "UTC",
        "enabled": "on",
    }
    data.update(fields)
    return {key: value for key, value in data.items() if value is not None}


def empty_inline(prefix) -> dict:
    """The management form of an inline with no rows, as the browser posts it."""
    return {f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"}


def action_post(action, objects, **extra) -> dict:
    """A changelist action on the given rows, as the browser posts it."""
    return {"action": action, ACTION_CHECKBOX_NAME: [str(obj.pk) for obj in objects], **extra}
