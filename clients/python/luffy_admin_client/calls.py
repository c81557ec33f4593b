"""How a call is described and answered: the ``Call`` each endpoint makes, reading answers into
models, typed errors, the retry policy and the HTTP client's options (shared by both clients)."""

import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Generic, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from . import errors
from .models import (
    ErrorBody,
    Schedule,
    ScheduleSpec,
)

API_PATH = "/api/v1/task-scheduling"
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


def model_parser(model: type[BaseModel]) -> Callable[[httpx.Response], Any]:
    def parse(response: httpx.Response):
        value = model.model_validate(response.json())
        if "ETag" in response.headers:
            value._etag = response.headers["ETag"]
        return value

    return parse


def adapter_parser(annotation) -> Callable[[httpx.Response], Any]:
    adapter = TypeAdapter(annotation)
    return lambda response: adapter.validate_python(response.json())


def toggled(response: httpx.Response) -> Schedule:
    """Toggle answers ``{message, schedule}``; callers want the schedule."""
    schedule = Schedule.model_validate(response.json()["schedule"])
    schedule._etag = response.headers.get("ETag")
    return schedule


def nothing(response: httpx.Response) -> None:
    return None


def spec_body(value: ScheduleSpec | dict) -> dict:
    spec = value if isinstance(value, ScheduleSpec) else ScheduleSpec.model_validate(value)
    return spec.model_dump(mode="json")


def request_headers(*, if_match: str | None = None, idempotency_key: str | None = None) -> dict:
    headers = {}
    if if_match is not None:
        headers["If-Match"] = if_match
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    return headers


def without_none(**params) -> dict:
    return {name: value for name, value in params.items() if value is not None}


def query_bool(value: bool | None) -> str | None:
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
        kwargs["retry_after"] = retry_after(response)
    return kind(detail, **kwargs)


def retry_after(response: httpx.Response | None) -> float | None:
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
        told = retry_after(response)
        if told is not None:
            return min(told, MAX_BACKOFF_SECONDS)
        return min(self.backoff * 2**attempt * random.uniform(0.5, 1.5), MAX_BACKOFF_SECONDS)

    def should_retry(self, call: Call, attempt: int, response: httpx.Response | None) -> bool:
        if not call.retry or attempt >= self.retries:
            return False
        return response is None or response.status_code in RETRY_STATUSES


def unreachable(call: Call, exc: httpx.TransportError) -> errors.Unavailable:
    return errors.Unavailable(f"{call.method} {call.path}: no answer from the server ({type(exc).__name__}: {exc}).")


def api_url(base_url: str | None) -> str:
    base_url = base_url or os.environ.get("LUFFY_ADMIN_URL")
    if not base_url:
        raise ValueError("No server URL: pass base_url or set LUFFY_ADMIN_URL.")
    base_url = base_url.rstrip("/")
    return base_url if base_url.endswith(API_PATH) else base_url + API_PATH


def client_options(base_url, api_key, timeout) -> dict:
    api_key = api_key or os.environ.get("LUFFY_ADMIN_KEY")
    headers = {"Accept": "application/json", "User-Agent": "luffy-admin-client"}
    if api_key:
        headers["Authorization"] = f"Token {api_key}"
    return {"base_url": api_url(base_url), "headers": headers, "timeout": timeout}


def finish(call: Call, response: httpx.Response):
    if response.is_success or response.status_code in call.also_ok:
        return call.parse(response)
    raise error_for(response)
