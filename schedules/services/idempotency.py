"""Idempotency-Key: a retried write gets its first answer and writes nothing."""

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone as django_timezone

from .. import selectors
from ..errors import BrokerUnavailable, IdempotencyKeyReused
from ..models import IdempotencyRecord
from .audit import Actor

# How long an Idempotency-Key's first answer is replayed.
IDEMPOTENCY_TTL = timedelta(hours=24)


def request_fingerprint(*, method: str, path: str, body) -> str:
    """What makes two requests the same request: method, path (slash or not) and JSON body."""
    canonical = json.dumps([method.upper(), path.rstrip("/"), body], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(record: IdempotencyRecord, fingerprint: str) -> tuple[int, dict, bool]:
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    return record.status, record.response, True


def idempotent_call(
    *, actor: Actor, key: str, fingerprint: str, call: Callable[[], tuple[int, dict]]
) -> tuple[int, dict, bool]:
    """Run ``call`` (a write answering ``(status, body)``) once per caller and key.

    Returns ``(status, body, replayed)``. A retry within ``IDEMPOTENCY_TTL`` gets the first
    answer and writes nothing; the same key with another request raises
    ``IdempotencyKeyReused``. Only answers are kept: an error raised by ``call`` rolls back
    its record with its write, so a retry tries again.
    """
    since = django_timezone.now() - IDEMPOTENCY_TTL
    previous = selectors.idempotency_record_get(actor=actor.label, key=key, since=since)
    if previous is not None:
        return _replay(previous, fingerprint)
    record = None
    try:
        with transaction.atomic():
            IdempotencyRecord.objects.filter(created_at__lt=since).delete()
            try:
                with transaction.atomic():
                    # Claimed before the write: a concurrent retry with this key blocks on the
                    # unique index until we commit, then fails here and replays our answer.
                    record = IdempotencyRecord.objects.create(
                        actor=actor.label, key=key, fingerprint=fingerprint, status=0, response={}
                    )
            except IntegrityError:
                record = None
            if record is not None:
                status, body = call()
                record.status, record.response = status, body
                record.save(update_fields=["status", "response"])
    except BrokerUnavailable:
        # Run-now's send failed after the commit: nothing was sent, so a retry must send.
        if record is not None:
            IdempotencyRecord.objects.filter(pk=record.pk).delete()
        raise
    if record is None:
        return _replay(selectors.idempotency_record_get(actor=actor.label, key=key, since=since), fingerprint)
    return status, body, False
