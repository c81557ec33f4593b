"""The Celery app that `celery -A luffy_admin beat -S django` loads.

https://docs.celeryq.dev/en/stable/django/first-steps-with-django.html
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "luffy_admin.settings")

app = Celery("luffy_admin")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
