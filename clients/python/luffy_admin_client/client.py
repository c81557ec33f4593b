"""``LuffyAdmin`` (sync) and ``AsyncLuffyAdmin`` (async), on httpx.

Every endpoint is described once, in ``_Endpoints``, as a ``Call`` (method, path, body, how to
read the answer, whether it is safe to retry). The two clients differ only in how they send a
call: ``LuffyAdmin._call`` returns the result, ``AsyncLuffyAdmin._call`` a coroutine to await.

Retries: connection errors, timeouts and 429/502/503/504 are retried with exponential backoff
(honouring ``Retry-After``) for calls that are safe to repeat: GET, PUT, DELETE, the toggle
(it sets a value), and the POSTs that carry an ``Idempotency-Key``, which the client adds to
every create and run (the server answers a repeat with the first answer).
"""

import asyncio
import os
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Generic, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from . import errors
from .models import (
    AuditEvent,
    CatalogueTask,
    CronPreview,
    Dispatch,
    ErrorBody,
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

API_PATH = "/api/v1/task-scheduling"
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
RETRY_STATUSES = frozenset(
    {
        HTTPStatus.TOO_MANY_REQUESTS,
        HTTPStatus.BAD_GATEWAY,
        HTTPStatus.SERVICE_UNAVAILABLE,
        HTTPStatus.GATEWAY_TIMEOUT,
    }
)
MAX_BACKOFF_SECONDS = 30.0
T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a paginated list (``?page=``, ``?page_size=``)."""

    count: int
    next: str | None
    previous: str | None
    results: list[T]


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    parse: Callable[[httpx.Response], Any]
    params: dict | None = None
    json: Any = None
    headers: dict = field(default_factory=dict)
    retry: bool = False
    # Statuses whose body is the answer, not an error (/health answers 503 with its report).
    also_ok: frozenset = frozenset()


def _model(model: type[BaseModel]) -> Callable[[httpx.Response], Any]:
    def parse(response: httpx.Response):
        value = model.model_validate(response.json())
        if "ETag" in response.headers:
            value._etag = response.headers["ETag"]
        return value

    return parse


def _adapter(annotation) -> Callable[[httpx.Response], Any]:
    adapter = TypeAdapter(annotation)
    return lambda response: adapter.validate_python(response.json())


def _toggled(response: httpx.Response) -> Schedule:
    """Toggle answers ``{message, schedule}``; callers want the schedule."""
    schedule = Schedule.model_validate(response.json()["schedule"])
    schedule._etag = response.headers.get("ETag")
    return schedule


def _nothing(response: httpx.Response) -> None:
    return None


def _spec(value: ScheduleSpec | dict) -> dict:
    spec = value if isinstance(value, ScheduleSpec) else ScheduleSpec.model_validate(value)
    return spec.model_dump(mode="json")


def _headers(*, if_match: str | None = None, idempotency_key: str | None = None) -> dict:
    headers = {}
    if if_match is not None:
        headers["If-Match"] = if_match
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    return headers


def _without_none(**params) -> dict:
    return {name: value for name, value in params.items() if value is not None}


def _query_bool(value: bool | None) -> str | None:
    return None if value is None else str(value).lower()


def error_for(response: httpx.Response) -> errors.LuffyAdminError:
    """The typed exception for an error answer (a proxy's non-JSON page still gets one)."""
    try:
        parsed = ErrorBody.model_validate_json(response.content)
    except ValidationError:
        parsed = None
    body = parsed.model_dump(exclude_none=True) if parsed else {}
    detail = parsed.detail if parsed else f"HTTP {response.status_code} from {response.request.url}"
    kind = errors.BY_STATUS.get(response.status_code, errors.LuffyAdminError)
    kwargs = {"status": response.status_code, "code": parsed.code if parsed else None, "body": body}
    if kind is errors.RateLimited:
        kwargs["retry_after"] = _retry_after(response)
    return kind(detail, **kwargs)


def _retry_after(response: httpx.Response | None) -> float | None:
    if response is None:
        return None
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


@dataclass(frozen=True)
class RetryPolicy:
    """``retries`` more attempts after the first, waiting ``backoff * 2**n`` (with jitter, at most
    30 s), or what ``Retry-After`` says."""

    retries: int = 3
    backoff: float = 0.5

    def delay(self, attempt: int, response: httpx.Response | None) -> float:
        told = _retry_after(response)
        if told is not None:
            return min(told, MAX_BACKOFF_SECONDS)
        return min(self.backoff * 2**attempt * random.uniform(0.5, 1.5), MAX_BACKOFF_SECONDS)

    def should_retry(self, call: Call, attempt: int, response: httpx.Response | None) -> bool:
        if not call.retry or attempt >= self.retries:
            return False
        return response is None or response.status_code in RETRY_STATUSES


def _unreachable(call: Call, exc: httpx.TransportError) -> errors.Unavailable:
    return errors.Unavailable(f"{call.method} {call.path}: no answer from the server ({type(exc).__name__}: {exc}).")


def _api_url(base_url: str | None) -> str:
    base_url = base_url or os.environ.get("LUFFY_ADMIN_URL")
    if not base_url:
        raise ValueError("No server URL: pass base_url or set LUFFY_ADMIN_URL.")
    base_url = base_url.rstrip("/")
    return base_url if base_url.endswith(API_PATH) else base_url + API_PATH


def _client_options(base_url, api_key, timeout) -> dict:
    api_key = api_key or os.environ.get("LUFFY_ADMIN_KEY")
    headers = {"Accept": "application/json", "User-Agent": "luffy-admin-client"}
    if api_key:
        headers["Authorization"] = f"Token {api_key}"
    return {"base_url": _api_url(base_url), "headers": headers, "timeout": timeout}


class _Endpoints:
    """Every endpoint, once. ``_call`` sends (sync or async, see the subclasses)."""

    def _call(self, call: Call):
        raise NotImplementedError

    # --- services ---------------------------------------------------------------------

    def _services_page(self, page: int | None = None, page_size: int | None = None) -> Call:
        params = _without_none(page=page, page_size=page_size)
        return Call("GET", "/services", _adapter(Page[Service]), params=params, retry=True)

    def list_services(self, *, page: int | None = None, page_size: int | None = None) -> Page[Service]:
        return self._call(self._services_page(page, page_size))

    def get_service(self, service_id: str) -> ServiceDetail:
        """The service, with ``last_outcomes``: per task, its newest run's state."""
        return self._call(Call("GET", f"/services/{service_id}", _model(ServiceDetail), retry=True))

    def create_service(
        self, service_id: str, name: str, description: str = "", *, idempotency_key: str | None = None
    ) -> Service:
        """POST: 409 (``Conflict``) when the id exists. ``ensure_service`` is the idempotent way."""
        return self._call(
            Call(
                "POST",
                "/services",
                _model(Service),
                json={"id": service_id, "name": name, "description": description},
                headers=_headers(idempotency_key=idempotency_key or str(uuid.uuid4())),
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
                _model(Service),
                json={"name": name, "description": description},
                headers=_headers(if_match=if_match),
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
                _model(Service),
                json=_without_none(name=name, description=description),
                headers=_headers(if_match=if_match),
                retry=True,
            )
        )

    def delete_service(self, service_id: str, *, if_match: str | None = None) -> None:
        """Delete the service with its schedules."""
        return self._call(
            Call("DELETE", f"/services/{service_id}", _nothing, headers=_headers(if_match=if_match), retry=True)
        )

    # --- one service's schedules ------------------------------------------------------

    def service_schedules(self, service_id: str) -> list[Schedule]:
        return self._call(Call("GET", f"/services/{service_id}/schedules", _adapter(list[Schedule]), retry=True))

    def create_schedule(
        self, service_id: str, spec: ScheduleSpec | dict, *, idempotency_key: str | None = None
    ) -> Schedule:
        """Create one schedule; a retry never creates a second (an Idempotency-Key is always sent)."""
        return self._call(
            Call(
                "POST",
                f"/services/{service_id}/schedules",
                _model(Schedule),
                json=_spec(spec),
                headers=_headers(idempotency_key=idempotency_key or str(uuid.uuid4())),
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
                _model(ScheduleSet),
                params={"prune": _query_bool(prune), "dry_run": _query_bool(dry_run)},
                json=[_spec(item) for item in desired],
                retry=True,
            )
        )

    # --- schedules --------------------------------------------------------------------

    def _schedules_page(self, service, task_name, enabled, page, page_size) -> Call:
        params = _without_none(
            service=service, task_name=task_name, enabled=_query_bool(enabled), page=page, page_size=page_size
        )
        return Call("GET", "/schedules", _adapter(Page[Schedule]), params=params, retry=True)

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
        return self._call(Call("GET", f"/schedules/{schedule_id}", _model(Schedule), retry=True))

    def update_schedule(self, schedule_id, *, if_match: str | None = None, **changes) -> Schedule:
        """Change the fields given (``cron_expression=``, ``enabled=``, ``key=`` ...); others stay."""
        return self._call(
            Call(
                "PATCH",
                f"/schedules/{schedule_id}",
                _model(Schedule),
                json=changes,
                headers=_headers(if_match=if_match),
                retry=True,
            )
        )

    def set_enabled(self, schedule_id, enabled: bool, *, if_match: str | None = None) -> Schedule:
        return self._call(
            Call(
                "POST",
                f"/schedules/{schedule_id}/toggle",
                _toggled,
                json={"enabled": enabled},
                headers=_headers(if_match=if_match),
                retry=True,
            )
        )

    def enable(self, schedule_id, *, if_match: str | None = None) -> Schedule:
        return self.set_enabled(schedule_id, True, if_match=if_match)

    def disable(self, schedule_id, *, if_match: str | None = None) -> Schedule:
        return self.set_enabled(schedule_id, False, if_match=if_match)

    def delete_schedule(self, schedule_id, *, if_match: str | None = None) -> None:
        return self._call(
            Call("DELETE", f"/schedules/{schedule_id}", _nothing, headers=_headers(if_match=if_match), retry=True)
        )

    def run_schedule(self, schedule_id, *, idempotency_key: str | None = None) -> RunResponse:
        """Send the task now; a retry never sends twice (an Idempotency-Key is always sent)."""
        return self._call(
            Call(
                "POST",
                f"/schedules/{schedule_id}/run",
                _model(RunResponse),
                headers=_headers(idempotency_key=idempotency_key or str(uuid.uuid4())),
                retry=True,
            )
        )

    def _history_page(self, schedule_id, page, page_size) -> Call:
        params = _without_none(page=page, page_size=page_size)
        return Call("GET", f"/schedules/{schedule_id}/history", _adapter(Page[AuditEvent]), params=params, retry=True)

    def history(self, schedule_id, *, page: int | None = None, page_size: int | None = None) -> Page[AuditEvent]:
        """The schedule's changes, newest first (readable after it is deleted)."""
        return self._call(self._history_page(schedule_id, page, page_size))

    def _runs_page(self, schedule_id, state, page, page_size) -> Call:
        params = _without_none(state=state, page=page, page_size=page_size)
        return Call("GET", f"/schedules/{schedule_id}/runs", _adapter(Page[Run]), params=params, retry=True)

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
        return self._call(Call("GET", f"/schedules/{schedule_id}/dispatches", _adapter(list[Dispatch]), retry=True))

    # --- catalogue, cron, health ------------------------------------------------------

    def tasks(self) -> list[CatalogueTask]:
        return self._call(Call("GET", "/tasks", _adapter(list[CatalogueTask]), retry=True))

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
            **_without_none(service_id=service_id, task_name=task_name, key=key),
        }
        return self._call(Call("GET", "/cron/preview", _model(CronPreview), params=params, retry=True))

    def load(self, *, hours: int | None = None, resolution: str | None = None) -> Load:
        """Sends per minute (``resolution="hour"``: per hour) over the next ``hours`` (1-48,
        server default 24), by task, with the busiest minutes."""
        params = _without_none(hours=hours, resolution=resolution)
        return self._call(Call("GET", "/load", _model(Load), params=params, retry=True))

    def health(self) -> Health:
        """The report, also when it is ``down`` (the server answers 503 with it)."""
        return self._call(
            Call(
                "GET",
                "/health",
                _model(Health),
                retry=False,
                also_ok=frozenset({HTTPStatus.SERVICE_UNAVAILABLE}),
            )
        )


def _finish(call: Call, response: httpx.Response):
    if response.is_success or response.status_code in call.also_ok:
        return call.parse(response)
    raise error_for(response)


class LuffyAdmin(_Endpoints):
    """Synchronous client. ``base_url`` is the site (``http://luffy-admin:8000``) or the API base;
    ``api_key`` is sent as ``Authorization: Token <key>``. Both default to ``LUFFY_ADMIN_URL`` /
    ``LUFFY_ADMIN_KEY``. ``transport`` is httpx's (proxies, tests). Use as a context manager or
    call ``close()``."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retries: int = 3,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ):
        self._http = httpx.Client(transport=transport, **_client_options(base_url, api_key, timeout))
        self.retry_policy = RetryPolicy(retries=retries, backoff=backoff)

    def __enter__(self) -> "LuffyAdmin":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, call: Call):
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    call.method, call.path, params=call.params, json=call.json, headers=call.headers
                )
            except httpx.TransportError as exc:
                if not self.retry_policy.should_retry(call, attempt, None):
                    raise _unreachable(call, exc) from exc
                response = None
            if response is not None and not self.retry_policy.should_retry(call, attempt, response):
                return _finish(call, response)
            time.sleep(self.retry_policy.delay(attempt, response))
            attempt += 1

    def _pages(self, first: Callable[[int], Call]) -> Iterator:
        page = 1
        while True:
            current = self._call(first(page))
            yield from current.results
            if current.next is None:
                return
            page += 1

    def iter_services(self, *, page_size: int = 100) -> Iterator[Service]:
        return self._pages(lambda page: self._services_page(page, page_size))

    def iter_schedules(
        self,
        *,
        service: str | None = None,
        task_name: str | None = None,
        enabled: bool | None = None,
        page_size: int = 100,
    ) -> Iterator[Schedule]:
        return self._pages(lambda page: self._schedules_page(service, task_name, enabled, page, page_size))

    def iter_history(self, schedule_id, *, page_size: int = 100) -> Iterator[AuditEvent]:
        return self._pages(lambda page: self._history_page(schedule_id, page, page_size))

    def iter_runs(self, schedule_id, *, state: RunState | None = None, page_size: int = 100) -> Iterator[Run]:
        return self._pages(lambda page: self._runs_page(schedule_id, state, page, page_size))


class AsyncLuffyAdmin(_Endpoints):
    """Asynchronous client (FastAPI, asyncio): every method of ``LuffyAdmin``, awaited;
    ``iter_*`` are async iterators. Use ``async with`` or ``await aclose()``."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retries: int = 3,
        backoff: float = 0.5,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self._http = httpx.AsyncClient(transport=transport, **_client_options(base_url, api_key, timeout))
        self.retry_policy = RetryPolicy(retries=retries, backoff=backoff)

    async def __aenter__(self) -> "AsyncLuffyAdmin":
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, call: Call):
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    call.method, call.path, params=call.params, json=call.json, headers=call.headers
                )
            except httpx.TransportError as exc:
                if not self.retry_policy.should_retry(call, attempt, None):
                    raise _unreachable(call, exc) from exc
                response = None
            if response is not None and not self.retry_policy.should_retry(call, attempt, response):
                return _finish(call, response)
            await asyncio.sleep(self.retry_policy.delay(attempt, response))
            attempt += 1

    async def _pages(self, first: Callable[[int], Call]) -> AsyncIterator:
        page = 1
        while True:
            current = await self._call(first(page))
            for item in current.results:
                yield item
            if current.next is None:
                return
            page += 1

    def iter_services(self, *, page_size: int = 100) -> AsyncIterator[Service]:
        return self._pages(lambda page: self._services_page(page, page_size))

    def iter_schedules(
        self,
        *,
        service: str | None = None,
        task_name: str | None = None,
        enabled: bool | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[Schedule]:
        return self._pages(lambda page: self._schedules_page(service, task_name, enabled, page, page_size))

    def iter_history(self, schedule_id, *, page_size: int = 100) -> AsyncIterator[AuditEvent]:
        return self._pages(lambda page: self._history_page(schedule_id, page, page_size))

    def iter_runs(self, schedule_id, *, state: RunState | None = None, page_size: int = 100) -> AsyncIterator[Run]:
        return self._pages(lambda page: self._runs_page(schedule_id, state, page, page_size))
