"""The operators' admin: services, their schedules, the audit trail, and beat's own pages.

Every save, delete and action calls ``schedules/services/`` with the logged-in user as the
actor, so the admin writes exactly as the API does and the audit trail names who did it.
django-celery-beat's pages stay, re-registered so they validate cron like the rest of the
project and cannot edit or cascade-delete what a service schedule owns.

Django's autodiscovery imports this package; importing the modules registers their admins.
"""

from . import api_keys, audit, beat, schedules, services, site

__all__ = ["api_keys", "audit", "beat", "schedules", "services", "site"]
