"""Koppeltaal trace headers: ``X-Request-Id``, ``X-Correlation-Id`` and ``X-Trace-Id``.

TOP-KT-011 (and the IG page ``change-management-topic-11-trace-headers``):

- ``X-Request-Id``: new for every request we send (UUIDv4);
- ``X-Correlation-Id``: the ``X-Request-Id`` of the request that directly caused this one
  (the notification we received, the launch, the fetch whose answer we act on); absent
  when nothing caused it (a trace we start ourselves, e.g. a scheduled poll);
- ``X-Trace-Id``: passed on unchanged through the whole chain, created when absent.

The current trace lives in a :class:`contextvars.ContextVar`, so a web request, a worker
job or a thread each carries its own. :class:`TracedSession` is a ``requests.Session`` that
puts the headers on every request it sends; hand it to :class:`fhir_burnout.fhir.FhirClient`
(``session=``) or to a token source. Outside any :func:`traced` block it starts a fresh
trace per request, with no correlation.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import requests

from fhir_burnout.koppeltaal._profiles import is_fhir_id

REQUEST_ID = "X-Request-Id"
CORRELATION_ID = "X-Correlation-Id"
TRACE_ID = "X-Trace-Id"


@dataclass(frozen=True)
class Trace:
    """The trace we work in: its id, and the request id of what caused the current work."""

    trace_id: str
    cause: str | None = None


@dataclass(frozen=True)
class TraceIds:
    """The three ids an AuditEvent records (KT2 extensions trace-id, request-id,
    correlation-id); any may be None."""

    trace_id: str | None = None
    request_id: str | None = None
    correlation_id: str | None = None


_trace: ContextVar[Trace | None] = ContextVar("koppeltaal_trace", default=None)
_last_request: ContextVar[str | None] = ContextVar("koppeltaal_last_request", default=None)


def new_id() -> str:
    """A new id for a request or trace (UUIDv4, as TOP-KT-011 advises)."""
    return str(uuid.uuid4())


def current() -> Trace | None:
    """The trace of the current context, or None outside any :func:`traced` block."""
    return _trace.get()


@contextmanager
def traced(trace_id: str | None = None, cause: str | None = None) -> Iterator[Trace]:
    """Work inside a trace: requests sent in the block carry ``trace_id`` (a new one when
    None) and ``X-Correlation-Id: cause``. The previous trace comes back afterwards."""
    trace = Trace(trace_id or new_id(), cause or None)
    token = _trace.set(trace)
    last = _last_request.set(None)
    try:
        yield trace
    finally:
        _last_request.reset(last)
        _trace.reset(token)


def from_headers(headers: Mapping[str, str]) -> Trace:
    """The trace an incoming request (a notification, a launch) puts us in: its
    ``X-Trace-Id`` unchanged (new when absent), and its ``X-Request-Id`` as the cause of
    whatever we do next. ``headers`` is matched case-insensitively."""
    lower = {k.lower(): v for k, v in headers.items()}
    trace_id = (lower.get(TRACE_ID.lower()) or "").strip() or new_id()
    cause = (lower.get(REQUEST_ID.lower()) or "").strip() or None
    return Trace(trace_id, cause)


@contextmanager
def caused_by(request_id: str | None) -> Iterator[Trace]:
    """Requests in the block were caused by ``request_id`` (e.g. the fetch whose answer
    they act on), in the same trace (T011: correlation follows causality)."""
    trace = current()
    with traced(trace.trace_id if trace else None, request_id) as inner:
        yield inner


def launch_trace(jti: str | None) -> Trace:
    """The trace of an HTI launch: the launch token's ``jti`` is its trace id (TOP-KT-012c),
    when it is usable as one; else a new trace."""
    value = (jti or "").strip()
    return Trace(value if value and is_fhir_id(value) else new_id(), None)


def trace_context(trace: Trace | None) -> dict[str, str]:
    """What an outbox entry keeps of ``trace`` (``sync.enqueue``'s ``context``): its
    delivery, and every retry of it, runs in that trace with that cause (:func:`entry_trace`)."""
    if trace is None:
        return {}
    return {"trace_id": trace.trace_id} | ({"cause": trace.cause} if trace.cause else {})


def entry_trace(payload: Mapping[str, object], entry_key: str) -> Trace:
    """The trace an outbox entry is delivered in: the one it was queued in, else one of its
    own named by its key (a UUID): either way the same at every retry, never a new one."""
    trace_id, cause = payload.get("trace_id"), payload.get("cause")
    return Trace(
        trace_id if isinstance(trace_id, str) and trace_id else entry_key,
        cause if isinstance(cause, str) and cause else None,
    )


def outgoing_headers() -> dict[str, str]:
    """The trace headers for one request we are about to send (a new ``X-Request-Id``
    each time, remembered as :func:`last_request_id`)."""
    trace = current()
    request_id = new_id()
    headers = {REQUEST_ID: request_id, TRACE_ID: trace.trace_id if trace else new_id()}
    if trace is not None and trace.cause:
        headers[CORRELATION_ID] = trace.cause
    _last_request.set(request_id)
    return headers


def last_request_id() -> str | None:
    """The ``X-Request-Id`` of the last request sent in this trace (what an AuditEvent
    about its failure names), or None."""
    return _last_request.get()


def audit_ids(request_id: str | None = None) -> TraceIds:
    """The ids for an AuditEvent about the work in the current trace: its trace id, the
    request it is about (``request_id``, else the last one we sent), and its cause."""
    trace = current()
    return TraceIds(
        trace_id=trace.trace_id if trace else None,
        request_id=request_id or last_request_id(),
        correlation_id=trace.cause if trace else None,
    )


class TracedSession(requests.Session):
    """A ``requests.Session`` that adds the Koppeltaal trace headers to every request.

    A header the caller set explicitly wins (e.g. to replay a request with its own id).
    """

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        """Add the trace headers, then prepare as usual."""
        explicit = {k.lower() for k in (request.headers or {})}
        extra = {k: v for k, v in outgoing_headers().items() if k.lower() not in explicit}
        request.headers = {**extra, **(request.headers or {})}
        return super().prepare_request(request)
