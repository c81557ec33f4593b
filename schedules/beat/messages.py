"""Task messages built once per entry shape: what ``send_task`` would publish, for a fraction of its cost.

``app.send_task`` works out the task's defaults, the routing, Celery's settings and the
message's headers afresh for every message: about 0.5-1 ms of CPU each, which caps a burst of
aligned slots at ~1,000/s. Entries that share a task, headers and routing options (a *shape*)
share all of that work. ``Shapes.get`` has ``send_task`` itself build a shape's message once,
for a probe send, handing it a producer that records what ``send_task_message`` would publish
instead of publishing it; ``Template.publish`` then fills in what differs per send and passes
the message to kombu's ``Producer.publish`` with the very arguments ``send_task_message`` uses.

What differs per send: the task id (headers ``id`` and ``root_id``, property
``correlation_id``), ``expires`` (the header, ISO 8601, and the ``expiration`` property Celery
derives from it at the moment of publishing), the arguments (the body and the ``argsrepr`` /
``kwargsrepr`` headers, made with Celery's ``saferepr`` and its limits) and the entry's name
(header ``periodic_task_name``). The probe checks that Celery put its values exactly there and
nowhere else; if not, the shape is not templated.

A shape goes through ``send_task`` instead (``Shapes.get`` returns None) when:

- a task route is not a plain mapping or glob (a router function may route on the arguments);
- a ``before_task_publish``, ``after_task_publish`` or ``task_sent`` signal has receivers (they
  would see one probe instead of each message), or task-sent events are on;
- the result backend acts on each call (``on_task_call``: the default backend does nothing);
- the entry's options hold anything beyond queue, exchange, routing key and priority;
- the probe finds a per-send value anywhere else (e.g. headers overriding Celery's own).
"""

import json
import logging
from datetime import UTC, datetime

from celery import signals
from celery.app.routes import MapRoute
from celery.backends.base import Backend
from celery.utils.saferepr import saferepr

logger = logging.getLogger(__name__)

# The entry options a template handles (table.py reads these columns into ``Entry.options``).
TEMPLATED_OPTIONS = frozenset({"queue", "exchange", "routing_key", "priority"})
# Shapes kept per publisher; edits that give each entry its own headers must not grow it forever.
MAX_SHAPES = 1000

_PROBE_ID = "luffy-probe-task-id-0f3c"
_PROBE_NAME = "luffy-probe-entry-name-0f3c"
_PROBE_ARG = "luffy-probe-argument-0f3c"
_PROBE_EXPIRES = datetime(2999, 2, 3, 4, 5, 6, 789012, tzinfo=UTC)  # in the future: no warning


def argument_repr(value, maxlen: int, maxlevels: int) -> str:
    """Celery's ``saferepr(value, maxlen, maxlevels=maxlevels)``, without its token stream for the usual case.

    Beat's arguments are mostly a short list of strings and numbers (``["service-id"]``), or
    ``{}``. For those saferepr writes ``[`` items joined by ``", "`` ``]``, a string as
    ``'...'`` with only ``'`` escaped, a number (bool included) as ``str()``, and nothing is
    truncated while the whole stays under ``maxlen``. Anything else goes to saferepr itself
    (``test_publisher`` compares the two).
    """
    if type(value) is dict and not value:
        return "{}"
    if type(value) is list and len(value) <= 16 and maxlevels >= 2:
        parts = []
        for item in value:
            kind = type(item)
            if kind is str:
                parts.append("'" + item.replace("'", "\\'") + "'")
            elif kind is int or kind is bool or kind is float:
                parts.append(str(item))
            else:
                break
        else:
            text = "[" + ", ".join(parts) + "]"
            if maxlen is None or len(text) < maxlen:
                return text
    return saferepr(value, maxlen, maxlevels=maxlevels)


class _Recorded(Exception):
    """Raised by the recording producer: the publish call ``send_task_message`` made."""

    def __init__(self, body, kwargs):
        super().__init__("recorded")
        self.body, self.kwargs = body, kwargs


class _RecordingProducer:
    """Stands in for a producer: ``send_task`` builds the message, ``publish`` records it."""

    def __init__(self, connection):
        self.connection = connection

    def publish(self, body, **kwargs):
        raise _Recorded(body, kwargs)


class Template:
    """One shape's message, with the per-send values left to fill in."""

    __slots__ = ("_app", "_headers", "_properties", "_publish_kwargs", "_embed", "declare", "declared", "_argsrepr")

    def __init__(self, app, recorded: _Recorded):
        self._app = app
        self.declared = False  # set by the publisher once ``declare`` went (templates live per connection)
        kwargs = dict(recorded.kwargs)
        self._headers = kwargs.pop("headers")
        self.declare = kwargs.pop("declare") or []
        # What Producer.publish takes by name stays; the rest are message properties.
        named = {
            "exchange",
            "routing_key",
            "serializer",
            "compression",
            "retry",
            "retry_policy",
            "delivery_mode",
            "timeout",
            "confirm_timeout",
            "priority",
            "mandatory",
            "immediate",
            "content_type",
            "content_encoding",
        }
        self._publish_kwargs = {key: kwargs.pop(key) for key in list(kwargs) if key in named}
        self._properties = kwargs  # correlation_id, reply_to, expiration, ...
        self._embed = recorded.body[2]
        amqp = app.amqp
        maxlevels = app.conf.task_repr_maxlevels
        args_maxlen, kwargs_maxlen = amqp.argsrepr_maxsize, amqp.kwargsrepr_maxsize
        self._argsrepr = (
            lambda args: argument_repr(args, args_maxlen, maxlevels),
            lambda kwargs: argument_repr(kwargs, kwargs_maxlen, maxlevels),
        )

    def _fits(self, recorded: _Recorded, probe_args: list, probe_kwargs: dict) -> bool:
        """Whether Celery put the probe's per-send values where ``publish`` fills them in, only there."""
        headers, properties = self._headers, self._properties
        args_repr, kwargs_repr = self._argsrepr
        expected = {
            "id": _PROBE_ID,
            "root_id": _PROBE_ID,
            "expires": _PROBE_EXPIRES.isoformat(),
            "argsrepr": args_repr(probe_args),
            "kwargsrepr": kwargs_repr(probe_kwargs),
            "periodic_task_name": _PROBE_NAME,
        }
        if any(headers.get(key, object()) != value for key, value in expected.items()):
            return False
        if properties.get("correlation_id") != _PROBE_ID or "expiration" not in properties:
            return False
        body = recorded.body
        if not (isinstance(body, tuple) and len(body) == 3 and body[0] is probe_args and body[1] is probe_kwargs):
            return False
        rest = (
            {key: value for key, value in headers.items() if key not in expected},
            {key: value for key, value in properties.items() if key not in ("correlation_id", "expiration")},
            self._publish_kwargs,
            self._embed,
        )
        text = repr(rest)
        return not any(marker in text for marker in (_PROBE_ID, _PROBE_NAME, _PROBE_ARG, "2999-02-03"))

    def publish(self, producer, *, task_id: str, name: str, args: list, kwargs: dict, expires: datetime):
        """Publish one send through ``producer`` as ``send_task`` would have published it."""
        args_repr, kwargs_repr = self._argsrepr
        args, kwargs = args or (), kwargs or {}  # as Celery's as_task_v2: an empty list reads "()"
        headers = self._headers.copy()  # same keys, same order: only the values change
        headers["id"] = headers["root_id"] = task_id
        headers["expires"] = expires.isoformat()
        headers["argsrepr"] = args_repr(args)
        headers["kwargsrepr"] = kwargs_repr(kwargs)
        headers["periodic_task_name"] = name
        properties = self._properties.copy()
        properties["correlation_id"] = task_id
        # send_task: the seconds from now until ``expires``, never below zero (``app.now()`` in
        # the app's zone costs more than the rest of the message; the difference is the same).
        properties["expiration"] = max((expires - datetime.now(UTC)).total_seconds(), 0)
        producer.publish(
            (args, kwargs, self._embed),
            declare=None,  # declared once per batch (``Publisher``), as kombu's cache would make it
            headers=headers,
            **self._publish_kwargs,
            **properties,
        )


class Shapes:
    """Templates by shape: (task, headers, options, the publishing thread's reply-to id)."""

    def __init__(self, app):
        self._app = app
        self._templates: dict[tuple, Template | None] = {}

    def clear(self):
        self._templates.clear()

    def usable(self) -> bool:
        """Whether anything may be templated at all under the app's present settings."""
        app = self._app
        if any(not isinstance(route, MapRoute) for route in app.amqp.router.routes):
            return False
        if signals.before_task_publish.receivers or signals.after_task_publish.receivers:
            return False
        if signals.task_sent.receivers or app.conf.task_send_sent_event:
            return False
        return type(app.backend).on_task_call is Backend.on_task_call

    def get(self, connection, *, task: str, headers: str, options: dict) -> Template | None:
        """The shape's template, built on first use; None when the shape goes through ``send_task``."""
        key = (task, headers, tuple(options.items()), self._app.thread_oid)
        try:
            return self._templates[key]
        except KeyError:
            pass
        if len(self._templates) >= MAX_SHAPES:
            self._templates.clear()
        template = self._templates[key] = self._build(connection, task, options, json.loads(headers))
        return template

    def _build(self, connection, task: str, options: dict, user_headers: dict) -> Template | None:
        if not set(options) <= TEMPLATED_OPTIONS:
            logger.debug("beat: %s's options %s go through send_task", task, sorted(options))
            return None
        probe_args, probe_kwargs = [_PROBE_ARG], {"probe": _PROBE_ARG}
        try:
            self._app.send_task(
                task,
                probe_args,
                probe_kwargs,
                task_id=_PROBE_ID,
                producer=_RecordingProducer(connection),
                retry=False,
                expires=_PROBE_EXPIRES,
                headers=dict(user_headers, periodic_task_name=_PROBE_NAME, celery_beat_task=True),
                **options,
            )
        except _Recorded as recorded:
            template = Template(self._app, recorded)
            if template._fits(recorded, probe_args, probe_kwargs):
                return template
        except Exception as exc:  # whatever send_task refuses, it refuses again per send, as before
            logger.warning("beat: %s's messages go through send_task (building its template failed: %s)", task, exc)
            return None
        logger.debug("beat: %s's messages go through send_task (not templatable)", task)
        return None
