"""What spans record, without a server: ``trace``'s captured arguments and return value, and
``generation``'s GenAI attributes, read from an in-memory exporter."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import agentvista
from agentvista import _capture, _trace

# A key of the contract's shape (the checksum does not matter to redaction).
KEY = "av_0123abcd_" + "K" * 38


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Spans of `trace` and `generation` go to memory for the test."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    _trace.CURRENT.provider = provider
    _trace.CURRENT.generation += 1
    yield exporter
    _trace.CURRENT.provider = None
    _trace.CURRENT.generation += 1


def only(exporter: InMemorySpanExporter) -> ReadableSpan:
    finished = exporter.get_finished_spans()
    assert len(finished) == 1, finished
    return finished[0]


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def tokens(recorded: dict[str, Any]) -> tuple[Any, Any]:
    return recorded["gen_ai.usage.input_tokens"], recorded["gen_ai.usage.output_tokens"]


def test_trace_records_arguments_without_self_and_the_return_value(
    spans: InMemorySpanExporter,
) -> None:
    class Agent:
        @agentvista.trace
        def answer(self, question: str, *, top_k: int = 3) -> dict[str, Any]:
            return {"answer": question.upper(), "hits": top_k}

    assert Agent().answer("why", top_k=5) == {"answer": "WHY", "hits": 5}
    recorded = attrs(only(spans))
    assert json.loads(recorded[_capture.INPUT]) == {"question": "why", "top_k": 5}
    assert json.loads(recorded[_capture.OUTPUT]) == {"answer": "WHY", "hits": 5}
    assert f"{_capture.INPUT}.truncated" not in recorded


def test_trace_capture_io_false_records_neither(spans: InMemorySpanExporter) -> None:
    @agentvista.trace(capture_io=False)
    def secret(password: str) -> str:
        return password[::-1]

    secret("hunter2hunter2")
    recorded = attrs(only(spans))
    assert _capture.INPUT not in recorded and _capture.OUTPUT not in recorded


def test_a_large_value_is_cut_and_marked_and_a_key_is_redacted(
    spans: InMemorySpanExporter,
) -> None:
    @agentvista.trace
    def load(blob: str, key: str) -> str:
        return "é" * 40_000

    load("x" * 100_000, KEY)
    recorded = attrs(only(spans))
    assert len(recorded[_capture.INPUT].encode()) <= _capture.MAX_VALUE_BYTES
    assert recorded[f"{_capture.INPUT}.truncated"] is True
    output = recorded[_capture.OUTPUT]
    assert len(output.encode()) <= _capture.MAX_VALUE_BYTES
    assert recorded[f"{_capture.OUTPUT}.truncated"] is True
    # The cut never splits a character.
    assert set(output) == {"é"}

    load("short", KEY)
    second = attrs(spans.get_finished_spans()[1])
    assert KEY not in second[_capture.INPUT]
    assert "av_0123abcd_[REDACTED]" in second[_capture.INPUT]


def test_what_json_cannot_hold_is_written_with_repr(spans: InMemorySpanExporter) -> None:
    class Opaque:
        def __repr__(self) -> str:
            return "Opaque()"

    @agentvista.trace
    def step(thing: Opaque) -> set[int]:
        return {1}

    step(Opaque())
    recorded = attrs(only(spans))
    assert json.loads(recorded[_capture.INPUT]) == {"thing": "Opaque()"}
    assert recorded[_capture.OUTPUT] == json.dumps("{1}")


def test_a_generation_records_model_messages_and_tokens(spans: InMemorySpanExporter) -> None:
    messages = [{"role": "user", "content": "hi"}]
    with agentvista.generation("chat", model="gpt-4o", input=messages) as gen:
        gen.set_output([{"role": "assistant", "content": "hello"}])
        gen.set_usage(input_tokens=12, output_tokens=3)
        gen.set_model("gpt-4o-2024-08-06")
    span = only(spans)
    recorded = attrs(span)
    assert span.name == "chat"
    assert recorded["gen_ai.operation.name"] == "chat"
    assert recorded["gen_ai.request.model"] == "gpt-4o"
    assert recorded["gen_ai.response.model"] == "gpt-4o-2024-08-06"
    assert tokens(recorded) == (12, 3)
    assert json.loads(recorded["gen_ai.input.messages"]) == messages
    assert json.loads(recorded["gen_ai.output.messages"])[0]["content"] == "hello"


def test_a_decorated_generation_reads_an_openai_shaped_response(
    spans: InMemorySpanExporter,
) -> None:
    class Usage:
        prompt_tokens = 20
        completion_tokens = 7

    class Response:
        model = "gpt-4o-mini"
        usage = Usage()

    @agentvista.generation(model="gpt-4o-mini")
    async def ask(messages: list[dict[str, str]]) -> Response:
        return Response()

    asyncio.run(ask([{"role": "user", "content": "2+2?"}]))
    recorded = attrs(only(spans))
    assert recorded["gen_ai.response.model"] == "gpt-4o-mini"
    assert tokens(recorded) == (20, 7)
    assert json.loads(recorded["gen_ai.input.messages"]) == {
        "messages": [{"role": "user", "content": "2+2?"}]
    }


def test_a_generation_without_capture_keeps_tokens_but_no_messages(
    spans: InMemorySpanExporter,
) -> None:
    @agentvista.generation(capture_io=False)
    def ask(prompt: str) -> dict[str, Any]:
        return {"model": "claude", "usage": {"input_tokens": 5, "output_tokens": 2}}

    ask("private")
    recorded = attrs(only(spans))
    assert "gen_ai.input.messages" not in recorded
    assert "gen_ai.output.messages" not in recorded
    assert tokens(recorded) == (5, 2)
    assert recorded["gen_ai.response.model"] == "claude"


def test_generation_nests_under_trace(spans: InMemorySpanExporter) -> None:
    with agentvista.trace("run_agent"), agentvista.generation("llm"):
        pass
    child, parent = spans.get_finished_spans()
    assert child.parent is not None
    assert child.parent.span_id == parent.context.span_id


def test_generation_takes_a_name_once() -> None:
    with pytest.raises(TypeError):
        agentvista.generation("a", name="b")  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        agentvista.generation(42)  # type: ignore[call-overload]
