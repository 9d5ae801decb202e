"""The OTLP request the SDK sends for a small agent run, recorded byte for byte in
``bin/agentvista/tests/fixtures/sdk_trace.pb`` (from the repository's root).

The server's browser test posts that file to ``/otlp/v1/traces`` and checks the trace page: so
that the server is tested with what the SDK really sends, this test runs the SDK (``init``,
``trace``, ``generation``, its own exporter) against a local HTTP endpoint, takes the body off
the wire, and fails when it is no longer the file. The one difference it lets pass is the
resource's ``telemetry.sdk.version``: a fresh environment installs the newest OpenTelemetry,
and a release that changes nothing else must not fail the check. After a change to what the
SDK sends, regenerate the file — from ``sdk/python``::

    AGENTVISTA_UPDATE_FIXTURES=1 .venv/bin/python -m pytest -q -p no:cacheprovider \\
        tests/test_fixture.py

and check the browser test with the new file. No server binary is needed.

What would differ from one run or machine to the next is fixed, with as little patching as
possible: the ids (the provider's id generator), the clock (the one OpenTelemetry's span
module reads), ``service.instance.id`` (a random UUID unless ``OTEL_RESOURCE_ATTRIBUTES``
names one), and the exception's stack trace (file paths, line numbers and the layout of the
running Python's tracebacks: written here with each frame's file under its package, its
function and its source line). The body is stored decoded: the SDK gzips it, and gzip writes
the time into it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import gzip
import http.server
import importlib.metadata
import linecache
import os
import threading
import traceback
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import opentelemetry.sdk.trace as sdk_trace
import pytest
from google.protobuf import text_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from opentelemetry.sdk.trace.id_generator import IdGenerator

import agentvista
from agentvista import _http, _keys

#: The recorded request body, from the repository's root (three levels above tests/).
FIXTURE = Path(__file__).resolve().parents[3] / "bin/agentvista/tests/fixtures/sdk_trace.pb"
#: Set to 1 to write the fixture from this run instead of comparing with it.
UPDATE_ENV = "AGENTVISTA_UPDATE_FIXTURES"
REGENERATE = (
    f"regenerate it from sdk/python with `{UPDATE_ENV}=1 .venv/bin/python -m pytest -q "
    "-p no:cacheprovider tests/test_fixture.py`, then check the server's browser test with it"
)

STUB_KEY = _keys.generate_unchecked("0123abcd", "Q" * 32)
SERVICE_NAME = "support-agent"
SERVICE_INSTANCE_ID = "2ba04386-dee5-400e-804a-6822f72e9752"
MODEL = "gpt-4o-mini"
TASK = "Why is my export refused with HTTP 429?"
PLAN = "1. Search the docs for HTTP 429.\n2. Explain the limit that applies."
ANSWER = "The documentation search is unavailable right now; please try again later."

TRACE_ID = 0xF46D22239A13102B924F35E6B0B27C65
#: The span ids, in the order the spans start: run_agent, plan, chat, search_docs.
SPAN_IDS = (0xA1232C74783D6C80, 0x3EC579E556ACE3A5, 0xBCD616C8A36A498A, 0x570E184A555E0F24)
#: The first clock reading (run_agent's start), and how far each reading moves the clock.
START_NS = int(dt.datetime(2026, 12, 6, 12, tzinfo=dt.timezone.utc).timestamp()) * 10**9
TICK_NS = 7 * 10**6
#: What the run reads the clock for: each span's start and end, and the exception's event.
CLOCK_READS = 9


# The agent ------------------------------------------------------------------------------------
# At module level, so that each span is named after its function as a user's would be.


@agentvista.generation("chat", model=MODEL)
def chat(messages: list[dict[str, str]]) -> dict[str, Any]:
    """Stands in for ``client.chat.completions.create``: an OpenAI chat completion, as the
    dictionary its ``model_dump()`` gives."""
    return {
        "id": "chatcmpl-9fixture",
        "object": "chat.completion",
        "created": START_NS // 10**9,
        "model": MODEL,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": PLAN},
            "finish_reason": "stop",
        }],
        "usage": {"prompt_tokens": 12, "completion_tokens": 34, "total_tokens": 46},
    }


@agentvista.trace
def plan(task: str) -> str:
    response = chat([
        {"role": "system", "content": "You plan the steps of a support agent."},
        {"role": "user", "content": task},
    ])
    content: str = response["choices"][0]["message"]["content"]
    return content


@agentvista.trace
def search_docs(query: str) -> list[str]:
    raise ValueError("index unavailable")


@agentvista.trace
def run_agent(task: str) -> str:
    steps = plan(task)
    try:
        hits = search_docs(task)
    except ValueError:
        return ANSWER
    return f"{steps}\n{hits}"


# What varies from run to run ------------------------------------------------------------------


class FixedIds(IdGenerator):
    """``TRACE_ID``, then ``SPAN_IDS`` in turn. Says its trace ids are random, as OpenTelemetry's
    default generator does, so that the spans carry the same flags as in a real run."""

    def __init__(self) -> None:
        self._span_ids = iter(SPAN_IDS)

    def generate_trace_id(self) -> int:
        return TRACE_ID

    def generate_span_id(self) -> int:
        return next(self._span_ids)

    def is_trace_id_random(self) -> bool:
        return True


class Clock:
    """``time.time_ns`` for OpenTelemetry's span module: ``START_NS``, then ``TICK_NS`` later at
    each reading, so that every span lasts a different, non-zero time."""

    def __init__(self) -> None:
        self.reads = 0

    def __call__(self) -> int:
        now = START_NS + self.reads * TICK_NS
        self.reads += 1
        return now


class StableTraceback:
    """Stands in for the ``traceback`` module in OpenTelemetry's span module, which uses it for
    ``record_exception``'s ``exception.stacktrace`` only. The trace keeps Python's layout and
    each frame's function and source line, without what depends on the machine, the checkout,
    the Python version or where a line moved to: each file is written as its path under its
    package (``agentvista/_trace.py``), with no line numbers and no ``^^^`` markers."""

    @staticmethod
    def format_exception(exc: BaseException, /, *args: Any, **kwargs: Any) -> list[str]:
        lines = ["Traceback (most recent call last):\n"]
        for frame, lineno in traceback.walk_tb(exc.__traceback__):
            path = Path(frame.f_code.co_filename)
            module = str(frame.f_globals.get("__name__", ""))
            # `a.b` is a/b.py, or a/b/__init__.py for a package.
            depth = module.count(".") + (2 if path.stem == "__init__" else 1)
            lines.append(f'  File "{"/".join(path.parts[-depth:])}", in {frame.f_code.co_name}\n')
            source = linecache.getline(str(path), lineno).strip()
            if source:
                lines.append(f"    {source}\n")
        lines.extend(traceback.format_exception_only(type(exc), exc))
        return lines


# The endpoint ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Request:
    """What the endpoint got: the path, the headers (names in lowercase), the body as sent."""

    path: str
    headers: dict[str, str]
    body: bytes


class Recorder:
    """An HTTP endpoint on 127.0.0.1 that records each POST and answers 200 with an empty body
    of the request's content type (an empty ``ExportTraceServiceResponse``: all accepted)."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the name http.server calls
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {name.lower(): value for name, value in self.headers.items()}
                # Before answering: the exporter's flush returns once it has the answer.
                recorder.requests.append(Request(self.path, headers, body))
                self.send_response(200)
                self.send_header("Content-Type", headers.get("content-type", _http.PROTOBUF))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    running = Recorder()
    try:
        yield running
    finally:
        running.stop()


# Reading the request --------------------------------------------------------------------------


def value(any_value: AnyValue) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


def attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {pair.key: value(pair.value) for pair in pairs}


def rfc3339(nanos: int) -> str:
    at = dt.datetime.fromtimestamp(nanos // 10**9, dt.timezone.utc)
    return at.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos % 10**9 // 10**6:03d}Z"


def at(tick: int) -> str:
    return rfc3339(START_NS + tick * TICK_NS)


def summary(span: Span, names: dict[bytes, str]) -> tuple[Any, ...]:
    """A span as (parent's name, start, end, status, status message)."""
    status = Status.StatusCode.Name(span.status.code).removeprefix("STATUS_CODE_")
    return (
        names.get(span.parent_span_id),
        rfc3339(span.start_time_unix_nano),
        rfc3339(span.end_time_unix_nano),
        status,
        span.status.message,
    )


def without_sdk_version(body: bytes) -> bytes:
    """``body`` with every resource's ``telemetry.sdk.version`` emptied, serialised again."""
    request = ExportTraceServiceRequest.FromString(body)
    for resource_spans in request.resource_spans:
        for attribute in resource_spans.resource.attributes:
            if attribute.key == "telemetry.sdk.version":
                attribute.value.string_value = ""
    return request.SerializeToString(deterministic=True)


def difference(expected: bytes, actual: bytes) -> str:
    """The two requests' first differing lines in protobuf's text format."""
    try:
        old = text_format.MessageToString(ExportTraceServiceRequest.FromString(expected))
    except Exception as err:  # noqa: BLE001 - reported in the message instead
        return f"(the fixture does not decode: {err})"
    new = text_format.MessageToString(ExportTraceServiceRequest.FromString(actual))
    diff = difflib.unified_diff(
        old.splitlines(), new.splitlines(), "fixture", "this run", lineterm="", n=2
    )
    return "\n".join(list(diff)[:60])


# The test -------------------------------------------------------------------------------------


def record_the_run(recorder: Recorder, monkeypatch: pytest.MonkeyPatch) -> Request:
    """Runs the agent with the SDK sending to ``recorder``; returns the one request it sent."""
    # Nothing from the environment changes the request (resource attributes, limits, sampler).
    for name in [name for name in os.environ if name.startswith("OTEL_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", f"service.instance.id={SERVICE_INSTANCE_ID}")
    # No export on the batch processor's schedule while the run is under way: one request.
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "600000")

    agentvista.init(
        api_key=STUB_KEY, host=recorder.base, service_name=SERVICE_NAME, verify=False
    )
    state = agentvista._state
    assert state is not None
    # Read when the first span asks the provider for its tracer, after this.
    monkeypatch.setattr(state.provider, "id_generator", FixedIds())
    clock = Clock()
    with monkeypatch.context() as scoped:
        scoped.setattr(sdk_trace, "time_ns", clock)
        scoped.setattr(sdk_trace, "traceback", StableTraceback)
        assert run_agent(TASK) == ANSWER
    assert clock.reads == CLOCK_READS
    assert agentvista.flush() is True

    assert len(recorder.requests) == 1, [r.path for r in recorder.requests]
    return recorder.requests[0]


def test_the_sdk_sends_the_recorded_request(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = record_the_run(recorder, monkeypatch)
    assert sent.path == _http.OTLP_TRACES_PATH
    assert sent.headers["content-type"] == _http.PROTOBUF
    assert sent.headers["content-encoding"] == "gzip"
    assert sent.headers["authorization"] == f"Bearer {STUB_KEY}"
    body = gzip.decompress(sent.body)

    # What the request says, so that a wrong recording is never written.
    request = ExportTraceServiceRequest.FromString(body)
    assert len(request.resource_spans) == 1
    resource_spans = request.resource_spans[0]
    assert attributes(resource_spans.resource.attributes) == {
        "telemetry.sdk.language": "python",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.version": importlib.metadata.version("opentelemetry-sdk"),
        "service.instance.id": SERVICE_INSTANCE_ID,
        "service.name": SERVICE_NAME,
    }
    assert len(resource_spans.scope_spans) == 1
    scope_spans = resource_spans.scope_spans[0]
    assert (scope_spans.scope.name, scope_spans.scope.version) == (
        "agentvista", agentvista.__version__
    )
    spans = {span.name: span for span in scope_spans.spans}
    # In the order they ended.
    assert [span.name for span in scope_spans.spans] == [
        "chat", "plan", "search_docs", "run_agent"
    ]
    assert {span.trace_id for span in spans.values()} == {TRACE_ID.to_bytes(16, "big")}
    ids = dict(zip(("run_agent", "plan", "chat", "search_docs"), SPAN_IDS, strict=True))
    assert {name: int.from_bytes(span.span_id, "big") for name, span in spans.items()} == ids
    names = {span.span_id: name for name, span in spans.items()}
    assert {name: summary(span, names) for name, span in spans.items()} == {
        "run_agent": (None, at(0), at(8), "UNSET", ""),
        "plan": ("run_agent", at(1), at(4), "UNSET", ""),
        "chat": ("plan", at(2), at(3), "UNSET", ""),
        "search_docs": (
            "run_agent", at(5), at(7), "ERROR", "ValueError: index unavailable"
        ),
    }

    generation = attributes(spans["chat"].attributes)
    assert {k: v for k, v in generation.items() if not k.endswith(".messages")} == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": MODEL,
        "gen_ai.response.model": MODEL,
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 34,
    }
    assert '"content": "Why is my export refused' in generation["gen_ai.input.messages"]
    assert '"completion_tokens": 34' in generation["gen_ai.output.messages"]
    assert attributes(spans["run_agent"].attributes) == {
        "agentvista.input": f'{{"task": "{TASK}"}}',
        "agentvista.output": ANSWER,
    }
    (event,) = spans["search_docs"].events
    assert (event.name, rfc3339(event.time_unix_nano)) == ("exception", at(6))
    exception = attributes(event.attributes)
    assert (exception["exception.type"], exception["exception.message"]) == (
        "ValueError", "index unavailable"
    )
    assert exception["exception.stacktrace"].endswith(
        '  File "test_fixture.py", in search_docs\n'
        '    raise ValueError("index unavailable")\n'
        "ValueError: index unavailable\n"
    )

    if os.environ.get(UPDATE_ENV) == "1":
        FIXTURE.parent.mkdir(parents=True, exist_ok=True)
        FIXTURE.write_bytes(body)
    if not FIXTURE.is_file():
        pytest.fail(f"{FIXTURE} is missing: {REGENERATE}.")
    recorded = FIXTURE.read_bytes()
    try:
        same = without_sdk_version(recorded) == without_sdk_version(body)
    except DecodeError:
        same = False
    if not same:
        pytest.fail(
            f"The SDK no longer sends the request recorded in {FIXTURE} ({len(body)} bytes "
            f"now, {len(recorded)} recorded): {REGENERATE}.\n{difference(recorded, body)}"
        )
