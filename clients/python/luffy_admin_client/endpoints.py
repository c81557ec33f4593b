"""Every endpoint of the API, once, as the ``Call`` it makes; the clients only send them."""

import uuid
from collections.abc import Iterable
from http import HTTPStatus

from .calls import (
    Call,
    Page,
    adapter_parser,
    model_parser,
    nothing,
    query_bool,
    request_headers,
    spec_body,
    toggled,
    without_none,
)
from .models import (
    AuditEvent,
    CatalogueTask,
    CronPreview,
    Dispatch,
    Health,
    Load,
    Run,
    RunResponse,
    RunState,
    Schedule,
    ScheduleSet,
    ScheduleSpec,
    Service,
    ServiceDetail,
)


class Endpoints:
    """Every endpoint, once. ``_call`` sends (sync or async, see the subclasses)."""

    def _call(self, call: Call):
        raise NotImplementedError

    # --- services ---------------------------------------------------------------------

    def _services_page(self, page: int | None = None, page_size: int | None = None) -> Call:
        params = without_none(page=page, page_size=page_size)
        return Call("GET", "/services", adapter_parser(Page[Service]), params=params, retry=True)

    def list_services(self, *, page: int | None = None, page_size: int | None = None) -> Page[Service]:
        return self._call(self._services_page(page, page_size))

    def get_service(self, service_id: str) -> ServiceDetail:
        """The service, with ``last_outcomes``: per task, its newest run's state."""
        return self._call(Call("GET", f"/services/{service_id}", model_parser(ServiceDetail), retry=True))

    def create_service(
        self, service_id: str, name: str, description: str = "", *, idempotency_key: str | None = None
    ) -> Service:
        """POST: 409 (``Conflict``) when the id exists. ``ensure_service`` is the idempotent way."""
        return self._call(
            Call(
                "POST",
                "/services",
                model_parser(Service),
                json={"id": service_id, "name": name, "description": description},
                headers=request_headers(idempotency_key=idempotency_key or str(uuid.uuid4())),
                retry=True,
            )
        )

    def ensure_service(
        self, service_id: str, name: str, description: str = "", *, if_match: str | None = None
    ) -> Service:
        """Create the service, or set its name and description: PUT, idempotent."""
        return self._call(
            Call(
                "PUT",
                f"/services/{service_id}",
                model_parser(Service),
                json={"name": name, "description": description},
                headers=request_headers(if_match=if_match),
                retry=True,
            )
        )

    def update_service(
        self,
        service_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        if_match: str | None = None,
    ) -> Service:
        """PATCH the fields given (None: unchanged)."""
        return self._call(
            Call(
                "PATCH",
                f"/services/{service_id}",
                model_parser(Service),
                json=without_none(name=name, description=description),
                headers=request_headers(if_match=if_match),
                retry=True,
            )
        )

    def delete_service(self, service_id: str, *, if_match: str | None = None) -> None:
        """Delete the service with its schedules."""
        return self._call(
            Call("DELETE", f"/services/{service_id}", nothing, headers=request_headers(if_match=if_match), retry=True)
        )

    # --- one service's schedules ------------------------------------------------------

    def service_schedules(self, service_id: str) -> list[Schedule]:
        return self._call(Call("GET", f"/services/{service_id}/schedules", adapter_parser(list[Schedule]), retry=True))

    def create_schedule(
        self, service_id: str, spec: ScheduleSpec | dict, *, idempotency_key: str | None = None
    ) -> Schedule:
        """Create one schedule; a retry never creates a second (an Idempotency-Key is always sent)."""
        return self._call(
            Call(
                "POST",
                f"/services/{service_id}/schedules",
                model_parser(Schedule),
                json=spec_body(spec),
                headers=request_headers(idempotency_key=idempotency_key or str(uuid.uuid4())),
                retry=True,
            )
        )

    def apply_schedules(
        self,
        service_id: str,
        desired: Iterable[ScheduleSpec | dict],
        *,
        prune: bool = True,
        dry_run: bool = False,
    ) -> ScheduleSet:
        """Make the service's schedules be ``desired`` (matched by ``key``, else task and timing),
        in one server-side transaction. ``prune=False`` keeps schedules ``desired`` does not name."""
        return self._call(
            Call(
                "PUT",
                f"/services/{service_id}/schedules",
                model_parser(ScheduleSet),
                params={"prune": query_bool(prune), "dry_run": query_bool(dry_run)},
                json=[spec_body(item) for item in desired],
                retry=True,
            )
        )

    # --- schedules --------------------------------------------------------------------

    def _schedules_page(self, service, task_name, enabled, page, page_size) -> Call:
        params = without_none(
            service=service, task_name=task_name, enabled=query_bool(enabled), page=page, page_size=page_size
        )
        return Call("GET", "/schedules", adapter_parser(Page[Schedule]), params=params, retry=True)

    def list_schedules(
        self,
        *,
        service: str | None = None,
        task_name: str | None = None,
        enabled: bool | None = None,
        page: int | None = None,
        page_size: int | None = None,
    ) -> Page[Schedule]:
        return self._call(self._schedules_page(service, task_name, enabled, page, page_size))

    def get_schedule(self, schedule_id) -> Schedule:
        return self._call(Call("GET", f"/schedules/{schedule_id}", model_parser(Schedule), retry=True))

    def update_schedule(self, schedule_id, *, if_match: str | None = None, **changes) -> Schedule:
        """Change the fields given (``cron_expression=``, ``enabled=``, ``key=`` ...); others stay."""
        return self._call(
            Call(
                "PATCH",
                f"/schedules/{schedule_id}",
                model_parser(Schedule),
                json=changes,
                headers=request_headers(if_match=if_match),
                retry=True,
            )
        )

    def set_enabled(self, schedule_id, enabled: bool, *, if_match: str | None = None) -> Schedule:
        return self._call(
            Call(
                "POST",
                f"/schedules/{schedule_id}/toggle",
                toggled,
                json={"enabled": enabled},
                headers=request_headers(if_match=if_match),
                retry=True,
            )
        )

    def enable(self, schedule_id, *, if_match: str | None = None) -> Schedule:
        return self.set_enabled(schedule_id, True, if_match=if_match)

    def disable(self, schedule_id, *, if_match: str | None = None) -> Schedule:
        return self.set_enabled(schedule_id, False, if_match=if_match)

    def delete_schedule(self, schedule_id, *, if_match: str | None = None) -> None:
        return self._call(
            Call("DELETE", f"/schedules/{schedule_id}", nothing, headers=request_headers(if_match=if_match), retry=True)
        )

    def run_schedule(self, schedule_id, *, idempotency_key: str | None = None) -> RunResponse:
        """Send the task now; a retry never sends twice (an Idempotency-Key is always sent)."""
        return self._call(
            Call(
                "POST",
                f"/schedules/{schedule_id}/run",
                model_parser(RunResponse),
                headers=request_headers(idempotency_key=idempotency_key or str(uuid.uuid4())),
                retry=True,
            )
        )

    def _history_page(self, schedule_id, page, page_size) -> Call:
        params = without_none(page=page, page_size=page_size)
        return Call(
            "GET", f"/schedules/{schedule_id}/history", adapter_parser(Page[AuditEvent]), params=params, retry=True
        )

    def history(self, schedule_id, *, page: int | None = None, page_size: int | None = None) -> Page[AuditEvent]:
        """The schedule's changes, newest first (readable after it is deleted)."""
        return self._call(self._history_page(schedule_id, page, page_size))

    def _runs_page(self, schedule_id, state, page, page_size) -> Call:
        params = without_none(state=state, page=page, page_size=page_size)
        return Call("GET", f"/schedules/{schedule_id}/runs", adapter_parser(Page[Run]), params=params, retry=True)

    def runs(
        self,
        schedule_id,
        *,
        state: RunState | None = None,
        page: int | None = None,
        page_size: int | None = None,
    ) -> Page[Run]:
        """Its runs (beat's sends and run-nows) with what the workers reported, newest first;
        ``state=`` keeps the runs in that state (``"failed"`` ...)."""
        return self._call(self._runs_page(schedule_id, state, page, page_size))

    def dispatches(self, schedule_id) -> list[Dispatch]:
        """The last 10 sends beat made for it (fleet scheduler only)."""
        return self._call(
            Call("GET", f"/schedules/{schedule_id}/dispatches", adapter_parser(list[Dispatch]), retry=True)
        )

    # --- catalogue, cron, health ------------------------------------------------------

    def tasks(self) -> list[CatalogueTask]:
        return self._call(Call("GET", "/tasks", adapter_parser(list[CatalogueTask]), retry=True))

    def cron_preview(
        self,
        expression: str,
        *,
        timezone: str = "UTC",
        count: int = 5,
        service_id: str | None = None,
        task_name: str | None = None,
        key: str | None = None,
    ) -> CronPreview:
        """Valid or why not, in words, and the next runs. ``H`` fields land where they would for
        ``service_id`` + ``task_name`` (a schedule of that task there), or for ``key``."""
        params = {
            "expression": expression,
            "timezone": timezone,
            "count": count,
            **without_none(service_id=service_id, task_name=task_name, key=key),
        }
        return self._call(Call("GET", "/cron/preview", model_parser(CronPreview), params=params, retry=True))

    def load(self, *, hours: int | None = None, resolution: str | None = None) -> Load:
        """Sends per minute (``resolution="hour"``: per hour) over the next ``hours`` (1-48,
        server default 24), by task, with the busiest minutes."""
        params = without_none(hours=hours, resolution=resolution)
        return self._call(Call("GET", "/load", model_parser(Load), params=params, retry=True))

    def health(self) -> Health:
        """The report, also when it is ``down`` (the server answers 503 with it)."""
        return self._call(
            Call(
                "GET",
                "/health",
                model_parser(Health),
                retry=False,
                also_ok=frozenset({HTTPStatus.SERVICE_UNAVAILABLE}),
            )
        )
