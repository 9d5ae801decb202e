"""What ``agentvista.flush()`` returns, and which answers the exporter retries.

``True`` once the spans are stored, or when there was nothing to send; ``False`` when an
export since the previous flush was refused (400, 401, 403, 413, the monthly limit's 429) or
not delivered within the exporter's timeout. Against the real server (see conftest.py), except
for answers it cannot be made to give on demand — a 503, a 429 whose ``Retry-After`` is short
— for which a stub OTLP endpoint in this process stands in; those tests, and the ones with no
server at all, run without the binary.
"""

from __future__ import annotations

import http.server
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from opentelemetry import trace as otel_trace

import agentvista
from agentvista import _http, _keys

from conftest import (
    MAX_ATTRIBUTE_BYTES,
    MAX_BODY_BYTES,
    TINY_EVENTS,
    TINY_PLAN,
    Account,
    Server,
)

#: Seconds: the exporter's timeout in the tests where it runs out.
SHORT_TIMEOUT = 1
#: A well-formed key, for the stub and for servers that never answer.
STUB_KEY = _keys.generate_unchecked("0123abcd", "Q" * 32)


def send(name: str = "step", **attributes: Any) -> str:
    """Ends one span; returns its trace id."""
    with agentvista.trace(name, attributes=attributes or None):
        context = otel_trace.get_current_span().get_span_context()
        return format(context.trace_id, "032x")


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records
        if r.name == "agentvista" and r.levelno >= logging.WARNING
    ]


def stored_names(server: Server, read_key: str, trace_id: str) -> list[str]:
    events = server.get_json(f"/api/v1/traces/{trace_id}/?limit=1000", read_key)["events"]
    return [e["name"] for e in events]


def stored_traces(server: Server, read_key: str) -> int:
    return len(server.get_json("/api/v1/traces/?limit=100", read_key)["data"])


@pytest.fixture
def attempts(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Each HTTP request to an OTLP traces endpoint, as the status it got (or the name of the
    exception it raised), in order: what the exporter sent, retries included."""
    seen: list[Any] = []
    real_request = requests.Session.request

    def recording(self: requests.Session, method: str, url: str, *a: Any, **k: Any) -> Any:
        if not url.endswith(_http.OTLP_TRACES_PATH):
            return real_request(self, method, url, *a, **k)
        try:
            response = real_request(self, method, url, *a, **k)
        except Exception as err:
            seen.append(type(err).__name__)
            raise
        seen.append(response.status_code)
        return response

    monkeypatch.setattr(requests.Session, "request", recording)
    return seen


@pytest.fixture
def short_export_timeout(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setattr(agentvista, "EXPORT_TIMEOUT_SECONDS", SHORT_TIMEOUT)
    return SHORT_TIMEOUT


# The real server ------------------------------------------------------------------------------


def test_flush_is_true_once_the_spans_are_stored_and_when_there_is_nothing_to_send(
    server: Server, account: Account, attempts: list[Any],
) -> None:
    write_key = account.key("sdk", "write")
    read_key = account.key("dashboard", "read")
    agentvista.init(api_key=write_key, host=server.base)
    attempts.clear()  # init's key check

    assert agentvista.flush() is True  # nothing ended yet
    assert attempts == []

    trace_id = send("stored")
    assert agentvista.flush() is True
    assert attempts == [200]
    assert stored_names(server, read_key, trace_id) == ["stored"]

    assert agentvista.flush() is True  # nothing new
    assert attempts == [200]


def test_flush_is_false_for_a_revoked_key_and_each_flush_reports_its_own_exports(
    server: Server, account: Account, attempts: list[Any], caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    write_key = account.key("sdk", "write")
    read_key = account.key("dashboard", "read")
    agentvista.init(api_key=write_key, host=server.base)
    send("before")
    assert agentvista.flush() is True

    account.revoke(write_key)
    attempts.clear()
    send("after")
    assert agentvista.flush() is False
    assert attempts == [401]  # not retried
    # The refusal was this flush's to report: the next one, with nothing sent, is True...
    assert agentvista.flush() is True
    # ...and one that sends again is refused again.
    send("again")
    assert agentvista.flush() is False
    assert attempts == [401, 401]
    assert agentvista.flush() is True

    warnings = warnings_of(caplog)
    assert len(warnings) == 1 and "401" in warnings[0], warnings  # still logged once
    assert stored_traces(server, read_key) == 1  # "before" only


def test_flush_is_false_for_a_key_without_the_write_scope(
    server: Server, account: Account, attempts: list[Any], caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    read_key = account.key("dashboard", "read")
    agentvista.init(api_key=read_key, host=server.base, verify=False)
    send()
    assert agentvista.flush() is False
    assert attempts == [403]
    assert agentvista.flush() is True
    send()
    assert agentvista.flush() is False
    warnings = warnings_of(caplog)
    assert len(warnings) == 1 and "'write' scope" in warnings[0], warnings
    assert stored_traces(server, read_key) == 0


def test_flush_is_false_at_the_monthly_limit_and_the_batch_is_not_retried(
    server: Server, account: Account, attempts: list[Any], caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    account.set_plan(TINY_PLAN)
    write_key = account.key("sdk", "write")
    read_key = account.key("dashboard", "read")
    agentvista.init(api_key=write_key, host=server.base)
    for i in range(TINY_EVENTS):  # exactly the allowance
        send(f"step {i}")
    assert agentvista.flush() is True

    attempts.clear()
    send("over")
    send("over again")
    assert agentvista.flush() is False
    # One request. (This server's Retry-After runs to the month's end, past any exporter's
    # timeout; the stub test below shows the batch is not retried even when it would not.)
    assert attempts == [429]
    assert agentvista.flush() is True
    assert attempts == [429]

    warnings = warnings_of(caplog)
    assert len(warnings) == 1 and "monthly event limit" in warnings[0], warnings
    assert server.get_json("/api/v1/me/usage/", read_key)["events_used"] == TINY_EVENTS


def test_flush_is_false_for_a_batch_refused_as_invalid_and_true_for_the_next(
    server: Server, account: Account, attempts: list[Any],
) -> None:
    write_key = account.key("sdk", "write")
    read_key = account.key("dashboard", "read")
    agentvista.init(api_key=write_key, host=server.base, verify=False)

    # One string attribute past limits.max_attribute_bytes: 400, nothing stored.
    send("too long an attribute", payload="x" * (MAX_ATTRIBUTE_BYTES + 1))
    assert agentvista.flush() is False
    assert attempts == [400]  # not retried

    trace_id = send("fine")
    assert agentvista.flush() is True
    assert attempts == [400, 200]
    assert stored_names(server, read_key, trace_id) == ["fine"]
    assert stored_traces(server, read_key) == 1


def test_flush_is_false_for_a_body_past_the_servers_limit_and_true_for_the_next(
    server: Server, account: Account, attempts: list[Any],
) -> None:
    write_key = account.key("sdk", "write")
    read_key = account.key("dashboard", "read")
    agentvista.init(api_key=write_key, host=server.base, verify=False)

    # Gzip makes the body a few KiB; decoded, it is past limits.max_body_bytes: 413.
    send("too big a body", payload="x" * (MAX_BODY_BYTES + 1))
    assert agentvista.flush() is False
    assert attempts == [413]  # not retried

    trace_id = send("fine")
    assert agentvista.flush() is True
    assert attempts[-1] == 200
    assert stored_names(server, read_key, trace_id) == ["fine"]
    assert stored_traces(server, read_key) == 1


def test_a_keys_rate_limit_is_retried_and_flush_is_true_once_stored(
    server: Server, account: Account, attempts: list[Any],
) -> None:
    write_key = account.key("slow", "write", "--rate-limit", "1", "--burst", "1")
    read_key = account.key("dashboard", "read")
    agentvista.init(api_key=write_key, host=server.base, verify=False)
    trace_id = send("throttled")
    # Takes the key's one request of this second (an empty export, nothing stored), so that
    # the flush's export is answered 429 rate_limited with Retry-After: 1.
    _http.check_ingest(server.base, write_key)
    attempts.clear()

    assert agentvista.flush() is True
    assert attempts[0] == 429 and attempts[-1] == 200, attempts
    assert set(attempts[:-1]) == {429}, attempts
    assert stored_names(server, read_key, trace_id) == ["throttled"]


# No answer in time ----------------------------------------------------------------------------


@pytest.fixture
def silent_host() -> Iterator[str]:
    """A server that takes connections (the socket listens, so the kernel completes them)
    but never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


@pytest.fixture
def refusing_host() -> Iterator[str]:
    """A port bound (so no one else takes it) but not listening: connections are refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def test_flush_is_false_when_the_server_does_not_answer_within_the_export_timeout(
    silent_host: str, short_export_timeout: float, attempts: list[Any],
) -> None:
    agentvista.init(api_key=STUB_KEY, host=silent_host, verify=False)
    send()
    started = time.monotonic()
    assert agentvista.flush() is False
    elapsed = time.monotonic() - started
    assert short_export_timeout * 0.9 <= elapsed < short_export_timeout + 5, elapsed
    assert attempts and all(isinstance(a, str) for a in attempts), attempts  # no answer
    assert agentvista.flush() is True  # nothing since


def test_flush_is_false_when_the_server_is_unreachable(
    refusing_host: str, short_export_timeout: float, attempts: list[Any],
) -> None:
    agentvista.init(api_key=STUB_KEY, host=refusing_host, verify=False)
    send()
    started = time.monotonic()
    assert agentvista.flush() is False
    assert time.monotonic() - started < short_export_timeout + 5
    assert attempts and all(a == "ConnectionError" for a in attempts), attempts
    assert agentvista.flush() is True


# A stub OTLP endpoint -------------------------------------------------------------------------

Answer = tuple[int, dict[str, str], bytes]


def rpc_status(code: int, message: str, reason: str, **metadata: Any) -> bytes:
    """A ``google.rpc.Status`` with the ``ErrorInfo`` detail the server sends."""
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.ErrorInfo(
        reason=reason, domain="agentvista", metadata={k: str(v) for k, v in metadata.items()},
    ))
    return status_pb2.Status(code=code, message=message, details=[detail]).SerializeToString()


PROTOBUF_HEADERS = {"Content-Type": _http.PROTOBUF}
OK: Answer = (200, PROTOBUF_HEADERS, b"")
MONTHLY_LIMIT: Answer = (
    429,
    # A Retry-After well within the exporter's timeout: the exporter would retry it.
    {**PROTOBUF_HEADERS, "Retry-After": "1"},
    rpc_status(8, "The plan's monthly event limit is reached.", "monthly_event_limit_exceeded",
               limit=3, used=3, resets_at="2099-01-01T00:00:00Z"),
)
RATE_LIMITED: Answer = (
    429,
    {**PROTOBUF_HEADERS, "Retry-After": "1", "RateLimit-Limit": "1",
     "RateLimit-Remaining": "0", "RateLimit-Reset": "1"},
    rpc_status(8, "This API key's rate limit is used up; retry in 1 s.", "rate_limited"),
)
OVERLOADED: Answer = (
    503,
    {**PROTOBUF_HEADERS, "Retry-After": "1"},
    rpc_status(14, "The server is busy; retry in 1 s.", "overloaded"),
)
UNAUTHORIZED: Answer = (
    401,
    {**PROTOBUF_HEADERS, "WWW-Authenticate": 'Bearer realm="agentvista", error="invalid_token"'},
    rpc_status(16, "Invalid API key.", "invalid_api_key"),
)


class StubOtlp:
    """Answers each POST with the next answer of ``script`` (200 once it is empty) and
    records the statuses it answers with."""

    def __init__(self) -> None:
        self.script: list[Answer] = []
        self.statuses: list[int] = []
        self._lock = threading.Lock()
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the name http.server calls
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with stub._lock:
                    status, headers, body = stub.script.pop(0) if stub.script else OK
                    # Before answering: the client may check as soon as it has the answer.
                    stub.statuses.append(status)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

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
def stub() -> Iterator[StubOtlp]:
    running = StubOtlp()
    try:
        yield running
    finally:
        running.stop()


def test_the_monthly_limit_is_not_retried_even_when_retry_after_would_allow_it(
    stub: StubOtlp, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    stub.script = [MONTHLY_LIMIT]
    agentvista.init(api_key=STUB_KEY, host=stub.base, verify=False)
    send()
    started = time.monotonic()
    assert agentvista.flush() is False
    assert stub.statuses == [429]  # the exporter alone would have retried after 1 s
    assert time.monotonic() - started < 1
    warnings = warnings_of(caplog)
    assert len(warnings) == 1 and "monthly event limit" in warnings[0], warnings
    assert "(3 of 3 events used)" in warnings[0]
    assert not [r for r in caplog.records if r.name.startswith("opentelemetry.exporter")
                and r.levelno >= logging.WARNING], caplog.text

    send()  # later batches are still sent: the server decides when the limit is over
    assert agentvista.flush() is True
    assert stub.statuses == [429, 200]


def test_a_rate_limited_429_is_retried_and_flush_is_true(stub: StubOtlp) -> None:
    stub.script = [RATE_LIMITED]
    agentvista.init(api_key=STUB_KEY, host=stub.base, verify=False)
    send()
    assert agentvista.flush() is True
    assert stub.statuses == [429, 200]


def test_a_503_is_retried_and_flush_is_true(stub: StubOtlp) -> None:
    stub.script = [OVERLOADED]
    agentvista.init(api_key=STUB_KEY, host=stub.base, verify=False)
    send()
    assert agentvista.flush() is True
    assert stub.statuses == [503, 200]


def test_a_503_past_the_export_timeout_makes_flush_false(
    stub: StubOtlp, short_export_timeout: float,
) -> None:
    stub.script = [OVERLOADED] * 10
    agentvista.init(api_key=STUB_KEY, host=stub.base, verify=False)
    send()
    assert agentvista.flush() is False
    assert stub.statuses and set(stub.statuses) == {503}
    stub.script = []
    assert agentvista.flush() is True


def test_a_refusal_in_a_background_export_is_reported_by_the_next_flush(
    stub: StubOtlp, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The batch processor exports on its own every OTEL_BSP_SCHEDULE_DELAY milliseconds.
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    stub.script = [UNAUTHORIZED]
    agentvista.init(api_key=STUB_KEY, host=stub.base, verify=False)
    send()
    deadline = time.monotonic() + 10
    while not stub.statuses and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stub.statuses == [401]
    # Nothing left to send, but an export since the previous flush was refused.
    assert agentvista.flush() is False
    assert agentvista.flush() is True
    assert stub.statuses == [401]
