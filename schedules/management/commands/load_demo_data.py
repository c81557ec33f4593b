"""Create a few demo services with schedules, through the write path. Safe to run again."""

from django.core.management.base import BaseCommand

from schedules import services
from schedules.models import Service

DEMO = {
    "web-app": (
        "Web application",
        [
            {"task_name": "fetch_logs", "cron_expression": "* * * * *"},
            {"task_name": "generate_rca", "cron_expression": "*/15 * * * *"},
            {"task_name": "index_code", "cron_expression": "@daily"},
        ],
    ),
    "billing-api": (
        "Billing API",
        [
            {"task_name": "fetch_logs", "schedule_type": "interval", "interval_seconds": 60},
            {"task_name": "generate_rca", "cron_expression": "0 * * * *"},
        ],
    ),
    "search": (
        "Search",
        [
            {"task_name": "fetch_logs", "cron_expression": "*/5 * * * *", "enabled": False},
            {"task_name": "index_code", "cron_expression": "30 2 * * 1-5", "timezone": "Europe/Paris"},
        ],
    ),
    # The demo worker fails every other call for this service: within a minute of `make run`,
    # one of these two runs succeeds and the other fails.
    "flaky-svc": (
        "Flaky service",
        [
            {"task_name": "fetch_logs", "cron_expression": "* * * * *"},
            {"task_name": "generate_rca", "cron_expression": "* * * * *"},
        ],
    ),
}


class Command(BaseCommand):
    help = "Create demo services and schedules (skips services that already exist)."

    def handle(self, *args, **options):
        actor = services.Actor.system("load_demo_data")
        for service_id, (name, schedules) in DEMO.items():
            if Service.objects.filter(pk=service_id).exists():
                self.stdout.write(f"{service_id}: exists, left as it is")
                continue
            service = services.service_create(actor=actor, service_id=service_id, name=name)
            for fields in schedules:
                services.schedule_create(actor=actor, service=service, **fields)
            self.stdout.write(f"{service_id}: created with {len(schedules)} schedules")
