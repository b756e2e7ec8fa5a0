"""OpenTelemetry tracing over NATS headers: W3C ``traceparent`` in, spans per task, context out.

There is no official NATS instrumentation for Python; this follows what everyone does:
``messaging.system = "nats"``, span names ``"{operation} {subject}"``, CONSUMER spans for
processing and PRODUCER spans for publishing, lower-case header keys.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Literal

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Span, SpanKind

log = logging.getLogger(__name__)

TRACER_NAME = "prometheus-backend"


def setup_tracing(
    exporter: Literal["none", "console", "otlp"], service_name: str, endpoint: str | None = None
) -> TracerProvider | None:
    """Install a tracer provider for the process; ``none`` keeps OTel's no-op provider."""
    if exporter == "none":
        return None
    span_exporter: SpanExporter
    if exporter == "console":
        span_exporter = ConsoleSpanExporter()
    else:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found, unused-ignore]
                OTLPSpanExporter,
            )
        except ImportError:
            log.error("otel_exporter=otlp needs the 'otlp' extra; tracing stays off")
            return None
        span_exporter = OTLPSpanExporter(endpoint=endpoint) if endpoint else OTLPSpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(span_exporter))
    trace.set_tracer_provider(provider)
    return provider


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def extract(headers: Mapping[str, str] | None) -> Context:
    """The trace context a peer sent (``traceparent``/``tracestate``), or an empty one."""
    carrier = {k.lower(): v for k, v in (headers or {}).items()}
    return propagate.extract(carrier)


def inject(headers: dict[str, str]) -> dict[str, str]:
    """Add the current trace context to outgoing headers (in place, and returned)."""
    propagate.inject(headers)
    return headers


def _attrs(operation: str, subject: str, message_id: str | None) -> dict[str, str]:
    attrs = {
        "messaging.system": "nats",
        "messaging.operation.type": operation,
        "messaging.operation.name": operation,
        "messaging.destination.name": subject,
    }
    if message_id:
        attrs["messaging.message.id"] = message_id
    return attrs


def _untraced() -> bool:
    """Whether no tracer provider is installed (``otel_exporter`` none: OTel's proxy). Then
    the no-op tracer's span is the parent's non-recording span, made current: the fast
    paths below do just that, without building a tracer, attributes and span per message
    (what the rpc path's several spans per task cost)."""
    return isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


@contextmanager
def _parent_as_current(context: Context | None = None) -> Iterator[Span]:
    """What the no-op tracer's ``start_as_current_span`` does: the parent span (the one in
    ``context``, else the current one) made current again."""
    span = trace.get_current_span(context)
    token = otel_context.attach(trace.set_span_in_context(span))
    try:
        yield span
    finally:
        otel_context.detach(token)


@contextmanager
def consumer_span(
    subject: str, headers: Mapping[str, str] | None, message_id: str | None = None
) -> Iterator[Span]:
    """The span of processing one inbound message, a child of the sender's span."""
    if _untraced():
        with _parent_as_current(extract(headers)) as parent:
            yield parent
        return
    with tracer().start_as_current_span(
        f"process {subject}",
        context=extract(headers),
        kind=SpanKind.CONSUMER,
        attributes=_attrs("process", subject, message_id),
    ) as span:
        yield span


@contextmanager
def producer_span(subject: str, message_id: str | None = None) -> Iterator[Span]:
    """The span of one publish; inject inside it so the receiver continues this span."""
    if _untraced():  # the current span stays current: nothing to attach
        yield trace.get_current_span()
        return
    with tracer().start_as_current_span(
        f"send {subject}", kind=SpanKind.PRODUCER, attributes=_attrs("send", subject, message_id)
    ) as span:
        yield span


def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


@contextmanager
def continued(headers: Mapping[str, str] | None) -> Iterator[None]:
    """Run a block inside the sender's trace context (for work done outside the task's span)."""
    token = otel_context.attach(extract(headers))
    try:
        yield
    finally:
        otel_context.detach(token)
