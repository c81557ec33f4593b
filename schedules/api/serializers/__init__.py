"""The API's JSON shapes. Serializers check shape and render; they never write.

Schedule request fields are handed to the write path as the JSON values they are: it checks
types and values (``"900"``, ``1.5`` and ``true`` are not an interval; ``"yes"`` is not a
boolean) with the same messages the admin shows, so those rules live in one place.

``base`` holds what every shape shares (fields, request serializers, error bodies); the
others hold one resource's shapes each: ``schedules``, ``services``, ``utility`` (catalogue,
cron preview, /health, /load). The views import them from here.
"""

from .base import errors_for
from .schedules import (
    AuditEventSerializer,
    DispatchSerializer,
    MessageSerializer,
    RunResponseSerializer,
    RunSerializer,
    ScheduleCreateSerializer,
    ScheduleSerializer,
    ScheduleSetSerializer,
    ScheduleUpdateSerializer,
    ToggleResponseSerializer,
    ToggleSerializer,
)
from .services import ServiceCreateSerializer, ServiceDetailSerializer, ServiceSerializer, ServiceUpdateSerializer
from .utility import CatalogueTaskSerializer, CronPreviewSerializer, HealthSerializer, LoadSerializer

__all__ = [
    "AuditEventSerializer",
    "CatalogueTaskSerializer",
    "CronPreviewSerializer",
    "DispatchSerializer",
    "HealthSerializer",
    "LoadSerializer",
    "MessageSerializer",
    "RunResponseSerializer",
    "RunSerializer",
    "ScheduleCreateSerializer",
    "ScheduleSerializer",
    "ScheduleSetSerializer",
    "ScheduleUpdateSerializer",
    "ServiceCreateSerializer",
    "ServiceDetailSerializer",
    "ServiceSerializer",
    "ServiceUpdateSerializer",
    "ToggleResponseSerializer",
    "ToggleSerializer",
    "errors_for",
]
