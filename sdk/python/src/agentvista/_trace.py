"""``agentvista.trace``: spans for agent steps, as a decorator or a context manager, on
OpenTelemetry's context (so nesting — across ``await`` too — gives parent links, and spans of
other OpenTelemetry instrumentation nest with them)."""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, overload

from opentelemetry import trace as trace_api
from opentelemetry.util import types as otel_types

from . import _capture
from .version import __version__

F = TypeVar("F", bound=Callable[..., Any])
Attributes = Mapping[str, otel_types.AttributeValue] | None

#: The name of a span opened by ``with agentvista.trace():`` without a name.
DEFAULT_NAME = "agentvista.trace"


class _CurrentProvider:
    """Where the delegating tracers find the SDK ``TracerProvider`` of the current ``init``
    (``None`` before ``init`` and after ``shutdown``), and a generation number that changes
    whenever it does."""

    provider: trace_api.TracerProvider | None = None
    generation = 0


CURRENT = _CurrentProvider()


class DelegatingTracer(trace_api.Tracer):
    """A tracer that always starts spans on the current ``init``'s provider — so that
    ``init`` can be called again (or reset by tests) although OpenTelemetry's global
    provider can be set only once per process, and tracers obtained before ``init`` work."""

    def __init__(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
        self._args = args
        self._kwargs = dict(kwargs)
        self._generation = -1
        self._tracer: trace_api.Tracer = trace_api.NoOpTracer()

    def _real(self) -> trace_api.Tracer:
        generation, provider = CURRENT.generation, CURRENT.provider
        if generation != self._generation:
            self._tracer = (
                provider.get_tracer(*self._args, **self._kwargs)
                if provider is not None
                else trace_api.NoOpTracer()
            )
            self._generation = generation
        return self._tracer

    def start_span(self, *args: Any, **kwargs: Any) -> trace_api.Span:
        return self._real().start_span(*args, **kwargs)

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        return self._real().start_as_current_span(*args, **kwargs)


class DelegatingTracerProvider(trace_api.TracerProvider):
    """What ``init`` installs as OpenTelemetry's global provider (if the application has not
    installed one): every tracer it gives follows the current ``init``."""

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace_api.Tracer:
        return DelegatingTracer(args, kwargs)

    def __repr__(self) -> str:
        return "agentvista.DelegatingTracerProvider()"


GLOBAL_PROVIDER = DelegatingTracerProvider()
TRACER = GLOBAL_PROVIDER.get_tracer("agentvista", __version__)

# The span context managers open in this context, innermost last, by the id of the
# `_Trace` that opened them: one `_Trace` object may be entered in several threads or tasks.
_open: contextvars.ContextVar[tuple[tuple[int, Any], ...]] = contextvars.ContextVar(
    "agentvista_open_spans", default=()
)


class _SpanScope:
    """A context manager that opens a span as the current one and closes it on exit — the
    part ``trace`` and ``generation`` share. One object may be entered in several threads or
    tasks: each entry is kept in its own context."""

    __slots__ = ()

    def _open_span(self, name: str, attributes: Attributes) -> trace_api.Span:
        manager = TRACER.start_as_current_span(name, attributes=attributes)
        span = manager.__enter__()
        _open.set((*_open.get(), (id(self), manager)))
        return span

    def __exit__(self, *exc_info: object) -> bool | None:
        stack = _open.get()
        for i in range(len(stack) - 1, -1, -1):
            if stack[i][0] == id(self):
                manager = stack[i][1]
                _open.set(stack[:i] + stack[i + 1:])
                suppressed: bool | None = manager.__exit__(*exc_info)
                return suppressed
        return None

    async def __aexit__(self, *exc_info: object) -> bool | None:
        return self.__exit__(*exc_info)


class _Trace(_SpanScope):
    """What ``trace("name")`` returns: a decorator and a (sync or async) context manager."""

    __slots__ = ("_attributes", "_capture_io", "_name")

    def __init__(self, name: str | None, attributes: Attributes, capture_io: bool = True) -> None:
        self._name = name
        self._attributes = dict(attributes) if attributes else None
        self._capture_io = capture_io

    def __repr__(self) -> str:
        return f"agentvista.trace({self._name!r})"

    def __call__(self, func: F) -> F:
        if not callable(func):
            raise TypeError(
                "agentvista.trace(...) decorates a function; to open a span use "
                "`with agentvista.trace(...):`"
            )
        return _wrap(func, self._name or _name_of(func), self._attributes, self._capture_io)

    def __enter__(self) -> trace_api.Span:
        return self._open_span(self._name or DEFAULT_NAME, self._attributes)

    async def __aenter__(self) -> trace_api.Span:
        return self.__enter__()


def _name_of(func: Callable[..., Any]) -> str:
    return getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)


def _wrap(
    func: F,
    name: str,
    attributes: Attributes,
    capture_io: bool,
    on_start: Callable[[trace_api.Span, Any], None] | None = None,
    on_end: Callable[[trace_api.Span, Any], None] | None = None,
) -> F:
    """``func`` in a span named ``name``. With ``capture_io``, the call's arguments and its
    return value are recorded (``_capture``), through ``on_start`` and ``on_end`` when given
    (a generation records them under its own names)."""
    start = on_start or (lambda span, value: _capture.record(span, _capture.INPUT, value))
    end = on_end or (lambda span, value: _capture.record(span, _capture.OUTPUT, value))

    def begin(span: trace_api.Span, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        # Binding the arguments costs: only for a span that is recorded.
        if capture_io and span.is_recording():
            start(span, _capture.arguments(func, args, kwargs))

    def finish(span: trace_api.Span, result: Any) -> None:
        if capture_io and span.is_recording():
            end(span, result)

    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            with TRACER.start_as_current_span(name, attributes=attributes) as span:
                begin(span, args, kwargs)
                result = await func(*args, **kwargs)
                finish(span, result)
                return result

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with TRACER.start_as_current_span(name, attributes=attributes) as span:
            begin(span, args, kwargs)
            result = func(*args, **kwargs)
            finish(span, result)
            return result

    return wrapper  # type: ignore[return-value]


@overload
def trace(func: F, /) -> F: ...
@overload
def trace(
    name: str | None = None, /, *, attributes: Attributes = None, capture_io: bool = True
) -> _Trace: ...
@overload
def trace(
    *, name: str | None = None, attributes: Attributes = None, capture_io: bool = True
) -> _Trace: ...


def trace(
    func_or_name: Callable[..., Any] | str | None = None,
    /,
    *,
    name: str | None = None,
    attributes: Attributes = None,
    capture_io: bool = True,
) -> Any:
    """A span for an agent step.

    As a decorator, on sync and async functions::

        @agentvista.trace
        def plan(task): ...

        @agentvista.trace("call model")          # or @agentvista.trace(name="call model")
        async def call_model(prompt): ...

    As a context manager (``async with`` works too); it gives the OpenTelemetry span::

        with agentvista.trace("retrieve", attributes={"k": 5}) as span:
            span.set_attribute("hits", 3)

    The span is a child of the current span (OpenTelemetry's context), so nested steps keep
    their parents. An exception is recorded on the span and re-raised unchanged. Before
    ``init`` (or after ``shutdown``) spans are no-ops. A decorated generator function gets a
    span around the call that creates the generator only: use ``with`` inside it instead.

    A decorated function's arguments (``self`` and ``cls`` left out) and return value are
    recorded as ``agentvista.input`` and ``agentvista.output``: JSON (``repr`` otherwise), each
    cut to 32 KiB (``agentvista.input.truncated`` then says so), and every string shaped like
    an AgentVista key replaced by its prefix. ``capture_io=False`` records neither.
    """
    if callable(func_or_name) and not isinstance(func_or_name, str):
        return _wrap(func_or_name, name or _name_of(func_or_name), attributes, capture_io)
    if func_or_name is not None and name is not None:
        raise TypeError("agentvista.trace: give the name once, positionally or as name=")
    if func_or_name is not None and not isinstance(func_or_name, str):
        raise TypeError(
            f"agentvista.trace: the name must be a string, not {type(func_or_name).__name__}"
        )
    return _Trace(func_or_name if func_or_name is not None else name, attributes, capture_io)

