"""``agentvista.generation``: a span for one call to a language model, recorded with the
OpenTelemetry GenAI attribute names, so that AgentVista shows its model and token usage."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, overload

from opentelemetry import trace as trace_api

from . import _capture
from ._trace import Attributes, F, _name_of, _SpanScope, _wrap

#: The name of a generation opened by ``with agentvista.generation():`` without a name.
DEFAULT_NAME = "generation"

OPERATION = "gen_ai.operation.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"


class Generation:
    """What ``with agentvista.generation(...) as gen:`` gives: the span, and setters for what
    the model answered."""

    __slots__ = ("_capture_io", "span")

    def __init__(self, span: trace_api.Span, capture_io: bool) -> None:
        #: The OpenTelemetry span.
        self.span = span
        self._capture_io = capture_io

    def __repr__(self) -> str:
        return "agentvista.Generation()"

    def set_output(self, output: Any) -> None:
        """Records what the model answered (unless ``capture_io=False``), and the model and
        token usage it names when it is shaped like an OpenAI or Anthropic response."""
        if self._capture_io:
            _capture.record(self.span, OUTPUT_MESSAGES, output)
        _record_response(self.span, output)

    def set_usage(self, input_tokens: int | None = None, output_tokens: int | None = None) -> None:
        """Records the tokens the call took."""
        if input_tokens is not None:
            self.span.set_attribute(INPUT_TOKENS, int(input_tokens))
        if output_tokens is not None:
            self.span.set_attribute(OUTPUT_TOKENS, int(output_tokens))

    def set_model(self, model: str) -> None:
        """Records the model that answered (it may differ from the one asked for)."""
        self.span.set_attribute(RESPONSE_MODEL, model)


def _field(value: Any, *names: str) -> Any:
    """The first of ``names`` that ``value`` has, as a key or an attribute."""
    for name in names:
        if isinstance(value, Mapping) and name in value:
            return value[name]
        if not isinstance(value, Mapping) and hasattr(value, name):
            return getattr(value, name)
    return None


def _record_response(span: trace_api.Span, response: Any) -> None:
    """The model and token usage of a response shaped like an OpenAI (``usage.prompt_tokens``,
    ``usage.completion_tokens``) or Anthropic (``usage.input_tokens``, ``usage.output_tokens``)
    one, dictionary or object."""
    model = _field(response, "model")
    if isinstance(model, str):
        span.set_attribute(RESPONSE_MODEL, model)
    usage = _field(response, "usage")
    if usage is None:
        return
    for attribute, names in (
        (INPUT_TOKENS, ("input_tokens", "prompt_tokens")),
        (OUTPUT_TOKENS, ("output_tokens", "completion_tokens")),
    ):
        tokens = _field(usage, *names)
        if isinstance(tokens, int) and not isinstance(tokens, bool):
            span.set_attribute(attribute, tokens)


def _start_attributes(model: str | None, attributes: Attributes) -> dict[str, Any]:
    start: dict[str, Any] = {OPERATION: "chat"}
    if model is not None:
        start[REQUEST_MODEL] = model
    if attributes:
        start.update(attributes)
    return start


class _Generation(_SpanScope):
    """What ``generation("name")`` returns: a decorator and a (sync or async) context manager."""

    __slots__ = ("_attributes", "_capture_io", "_input", "_name")

    def __init__(
        self,
        name: str | None,
        model: str | None,
        input: Any,
        attributes: Attributes,
        capture_io: bool,
    ) -> None:
        self._name = name
        self._attributes = _start_attributes(model, attributes)
        self._input = input
        self._capture_io = capture_io

    def __repr__(self) -> str:
        return f"agentvista.generation({self._name!r})"

    def __call__(self, func: F) -> F:
        if not callable(func):
            raise TypeError(
                "agentvista.generation(...) decorates a function; to open a span use "
                "`with agentvista.generation(...):`"
            )
        return _decorate(func, self._name, self._attributes, self._capture_io)

    def __enter__(self) -> Generation:
        span = self._open_span(self._name or DEFAULT_NAME, self._attributes)
        if self._capture_io and self._input is not None:
            _capture.record(span, INPUT_MESSAGES, self._input)
        return Generation(span, self._capture_io)

    async def __aenter__(self) -> Generation:
        return self.__enter__()


def _decorate(func: F, name: str | None, attributes: dict[str, Any], capture_io: bool) -> F:
    def on_start(span: trace_api.Span, arguments: Any) -> None:
        if capture_io:
            _capture.record(span, INPUT_MESSAGES, arguments)

    def on_end(span: trace_api.Span, result: Any) -> None:
        if capture_io:
            _capture.record(span, OUTPUT_MESSAGES, result)
        # The model and the tokens are recorded whatever `capture_io` says: they are no one's
        # data.
        _record_response(span, result)

    # `capture_io=True` here: the hooks decide what to record.
    return _wrap(func, name or _name_of(func), attributes, True, on_start, on_end)


@overload
def generation(func: F, /) -> F: ...
@overload
def generation(
    name: str | None = None,
    /,
    *,
    model: str | None = None,
    input: Any = None,
    attributes: Attributes = None,
    capture_io: bool = True,
) -> _Generation: ...
@overload
def generation(
    *,
    name: str | None = None,
    model: str | None = None,
    input: Any = None,
    attributes: Attributes = None,
    capture_io: bool = True,
) -> _Generation: ...


def generation(
    func_or_name: Callable[..., Any] | str | None = None,
    /,
    *,
    name: str | None = None,
    model: str | None = None,
    input: Any = None,
    attributes: Attributes = None,
    capture_io: bool = True,
) -> Any:
    """A span for one call to a language model, with the GenAI attribute names.

    As a decorator, around the function that calls the model: its arguments are recorded as
    ``gen_ai.input.messages``, its return value as ``gen_ai.output.messages``, and when the
    return value is shaped like an OpenAI or Anthropic response (``model``, ``usage`` with
    ``prompt_tokens``/``completion_tokens`` or ``input_tokens``/``output_tokens``), its model
    and token usage too::

        @agentvista.generation(model="gpt-4o")
        def ask(messages):
            return client.chat.completions.create(model="gpt-4o", messages=messages)

    As a context manager (``async with`` too), giving a handle to record the answer::

        with agentvista.generation("summarise", model="gpt-4o", input=messages) as gen:
            reply = call_the_model(messages)
            gen.set_output(reply.text)
            gen.set_usage(input_tokens=812, output_tokens=64)

    Inputs and outputs are captured as ``trace`` captures them (JSON, 32 KiB each, keys
    redacted); ``capture_io=False`` records neither, only the model and the tokens.
    """
    if callable(func_or_name) and not isinstance(func_or_name, str):
        attrs = _start_attributes(model, attributes)
        return _decorate(func_or_name, name, attrs, capture_io)
    if func_or_name is not None and name is not None:
        raise TypeError("agentvista.generation: give the name once, positionally or as name=")
    if func_or_name is not None and not isinstance(func_or_name, str):
        raise TypeError(
            "agentvista.generation: the name must be a string, "
            f"not {type(func_or_name).__name__}"
        )
    label = func_or_name if func_or_name is not None else name
    return _Generation(label, model, input, attributes, capture_io)
