"""Versions of what a caller can change: ETags, and the If-Match check every write makes."""

import hashlib
import json

from ..errors import PreconditionFailed
from ..models import Service, TaskSchedule
from .audit import schedule_snapshot, service_snapshot


def _etag(snapshot: dict) -> str:
    digest = hashlib.sha256(json.dumps(snapshot, sort_keys=True).encode()).hexdigest()[:32]
    return f'"{digest}"'


def schedule_etag(schedule: TaskSchedule) -> str:
    """The schedule's version: what a caller can change (not run state: a dispatch moves
    ``last_run`` without changing it)."""
    return _etag(schedule_snapshot(schedule))


def service_etag(service: Service) -> str:
    """The service's version: its name and description (not its schedule count)."""
    return _etag(service_snapshot(service))


def check_if_match(*, if_match: str | None, current_etag: str | None, what: str) -> None:
    """Refuse a write whose ``If-Match`` (RFC 9110: a list of ETags, or ``*``) misses the
    current version; ``current_etag`` is None when the resource does not exist. Checked
    under the write's lock, so of two callers holding one version only the first wins."""
    if if_match is None:
        return
    wanted = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
    if current_etag is not None and ("*" in wanted or current_etag in wanted):
        return
    if current_etag is None:
        detail = f"The {what} does not exist (If-Match)."
    else:
        detail = f"The {what} changed since you read it (its ETag is now {current_etag}); read it again and retry."
    raise PreconditionFailed(detail, current_etag=current_etag)
