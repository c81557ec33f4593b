"""``LuffyAdmin`` (sync) and ``AsyncLuffyAdmin`` (async), on httpx.

Every endpoint is described once, in ``endpoints.Endpoints``, as a ``Call`` (method, path, body, how to
read the answer, whether it is safe to retry). The two clients differ only in how they send a
call: ``LuffyAdmin._call`` returns the result, ``AsyncLuffyAdmin._call`` a coroutine to await.

Retries: connection errors, timeouts and 429/502/503/504 are retried with exponential backoff
(honouring ``Retry-After``) for calls that are safe to repeat: GET, PUT, DELETE, the toggle
(it sets a value), and the POSTs that carry an ``Idempotency-Key``, which the client adds to
every create and run (the server answers a repeat with the first answer).
"""

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator

import httpx

from .calls import Call, RetryPolicy, client_options, finish, unreachable
from .endpoints import Endpoints
from .models import (
    AuditEvent,
    Run,
    RunState,
    Schedule,
    Service,
)

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class LuffyAdmin(Endpoints):
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
        self._http = httpx.Client(transport=transport, **client_options(base_url, api_key, timeout))
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
                    raise unreachable(call, exc) from exc
                response = None
            if response is not None and not self.retry_policy.should_retry(call, attempt, response):
                return finish(call, response)
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


class AsyncLuffyAdmin(Endpoints):
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
        self._http = httpx.AsyncClient(transport=transport, **client_options(base_url, api_key, timeout))
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
                    raise unreachable(call, exc) from exc
                response = None
            if response is not None and not self.retry_policy.should_retry(call, attempt, response):
                return finish(call, response)
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
