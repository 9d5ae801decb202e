"""The SDK against the real server (see conftest.py)."""

from __future__ import annotations

import asyncio
import calendar
import logging
import os
import secrets
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from opentelemetry import trace as otel_trace

import agentvista
from agentvista import _keys

from conftest import TINY_EVENTS, TINY_PLAN, Account, Server

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def current_ids() -> dict[str, str]:
    context = otel_trace.get_current_span().get_span_context()
    return {
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
    }


def agentvista_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name == "agentvista" and r.levelno >= logging.WARNING
    ]


def assert_no_secret(text: str, account: Account) -> None:
    for secret in account.secrets():
        assert secret not in text, "a key's secret part was logged or shown"


def trace_events(server: Server, read_key: str, trace_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = server.get_json(
        f"/api/v1/traces/{trace_id}/?limit=1000", read_key
    )["events"]
    return events


@pytest.fixture
def closed_port() -> Iterator[str]:
    """A URL on which nothing listens: the port is bound (so no one else takes it) but not
    listening, so a connection is refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fails the test on any HTTP request made through requests (which the SDK and its
    exporter use); returns the list of attempted URLs."""
    attempted: list[str] = []

    def refuse(self: requests.Session, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        attempted.append(url)
        raise AssertionError(f"a network call was made: {method} {url}")

    monkeypatch.setattr(requests.Session, "request", refuse)
    return attempted


# 1 ------------------------------------------------------------------------------------------


def test_spans_of_nested_sync_and_async_steps_are_stored_with_their_parents(
    server: Server, account: Account, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    write_key = account.key("sdk", "write")
    read_key = account.key("dashboard", "read")
    monkeypatch.setenv("AGENTVISTA_API_KEY", write_key)
    monkeypatch.setenv("AGENTVISTA_HOST", server.base)

    # The product page's lines, unchanged.
    import os, agentvista  # noqa: E401, I001
    agentvista.init(api_key=os.environ["AGENTVISTA_API_KEY"])

    seen: dict[str, dict[str, str]] = {}

    @agentvista.trace
    def plan(task: str) -> str:
        seen["plan"] = current_ids()
        return asyncio.run(research(task))

    @agentvista.trace("research")
    async def research(task: str) -> str:
        seen["research"] = current_ids()
        await asyncio.sleep(0)
        with agentvista.trace("tool call", attributes={"tool": "search"}) as span:
            span.set_attribute("hits", 3)
            seen["tool call"] = current_ids()
            await asyncio.sleep(0)
        return summarise(task)

    @agentvista.trace(name="summarise")
    def summarise(task: str) -> str:
        seen["summarise"] = current_ids()
        return task.upper()

    assert plan("find flights") == "FIND FLIGHTS"
    assert agentvista.flush()

    trace_id = seen["plan"]["trace_id"]
    assert all(ids["trace_id"] == trace_id for ids in seen.values()), seen
    listed = server.get_json("/api/v1/traces/?limit=100", read_key)["data"]
    mine = [t for t in listed if t["trace_id"] == trace_id]
    assert len(mine) == 1, listed
    assert mine[0]["event_count"] == 4

    events = trace_events(server, read_key, trace_id)
    by_name = {e["name"]: e for e in events}
    plan_name = plan.__qualname__
    assert set(by_name) == {plan_name, "research", "tool call", "summarise"}, events
    for name, event in by_name.items():
        key = "plan" if name == plan_name else name
        assert event["type"] == "span"
        assert event["id"] == f"{trace_id}-{seen[key]['span_id']}"
        assert event["body"]["span_id"] == seen[key]["span_id"]
    assert "parent_span_id" not in by_name[plan_name]["body"]
    assert by_name["research"]["body"]["parent_span_id"] == seen["plan"]["span_id"]
    assert by_name["tool call"]["body"]["parent_span_id"] == seen["research"]["span_id"]
    assert by_name["summarise"]["body"]["parent_span_id"] == seen["research"]["span_id"]
    attributes = str(by_name["tool call"]["body"]["attributes"])
    assert "search" in attributes and "hits" in attributes

    assert_no_secret(caplog.text, account)
    assert_no_secret(repr(agentvista._state), account)


def test_a_generation_and_captured_arguments_reach_the_server_without_the_key(
    server: Server, account: Account,
) -> None:
    write_key = account.key("sdk", "write")
    read_key = account.key("dashboard", "read")
    agentvista.init(api_key=write_key, host=server.base)
    seen: dict[str, str] = {}

    @agentvista.trace
    def run_agent(task: str, api_key: str) -> str:
        seen["trace_id"] = current_ids()["trace_id"]
        messages = [{"role": "user", "content": task}]
        with agentvista.generation("llm", model="gpt-4o", input=messages) as gen:
            gen.set_output("done")
            gen.set_usage(input_tokens=11, output_tokens=2)
        return "ok"

    assert run_agent("book a table", write_key) == "ok"
    assert agentvista.flush()
    events = {e["name"]: e for e in trace_events(server, read_key, seen["trace_id"])}
    llm = str(events["llm"]["body"]["attributes"])
    for expected in ("gen_ai.request.model", "gpt-4o", "gen_ai.usage.input_tokens", "table"):
        assert expected in llm, llm
    captured = str(events[run_agent.__qualname__]["body"]["attributes"])
    assert "agentvista.input" in captured and "book a table" in captured, captured
    assert_no_secret(captured + llm, account)


def test_spans_ended_before_exit_are_flushed_by_atexit(server: Server, account: Account) -> None:
    write_key = account.key("sdk", "write")
    read_key = account.key("dashboard", "read")
    script = textwrap.dedent(
        """
        import os, agentvista
        from opentelemetry import trace
        agentvista.init(api_key=os.environ["AGENTVISTA_API_KEY"])
        with agentvista.trace("before exit"):
            print(format(trace.get_current_span().get_span_context().trace_id, "032x"))
        """
    )
    env = dict(os.environ, AGENTVISTA_API_KEY=write_key, AGENTVISTA_HOST=server.base)
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,  # checked below, so that a failure shows the child's stderr
    )
    assert done.returncode == 0, done.stderr
    trace_id = done.stdout.strip()
    # No flush() in the script: the span can only have been sent by the atexit hook, and a
    # 200 means stored, so it is there now.
    events = trace_events(server, read_key, trace_id)
    assert [e["name"] for e in events] == ["before exit"]


# 2 ------------------------------------------------------------------------------------------


def test_a_malformed_key_is_refused_before_any_network_call(
    closed_port: str, no_network: list[str], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    good = _keys.generate_unchecked("0123abcd", "Q" * 32)
    wrong_digit = good[:-1] + ("0" if good[-1] != "0" else "1")
    malformed = [
        wrong_digit,  # checksum
        good[:20] + ("x" if good[20] != "x" else "y") + good[21:],  # a typo inside the secret
        good[:-1],  # truncated
        good + "0",  # too long
        good.upper(),  # the prefix must be lowercase hex
        "sk_live_" + good[8:],
        "av_0123abcd_short",
        "Bearer " + good,
    ]
    for key in malformed:
        with pytest.raises(agentvista.InvalidApiKey):
            agentvista.init(api_key=key, host=closed_port)
        assert not agentvista.is_initialized()
    # A missing key: neither argument nor environment.
    with pytest.raises(agentvista.InvalidApiKey, match="AGENTVISTA_API_KEY"):
        agentvista.init(host=closed_port)
    monkeypatch.setenv("AGENTVISTA_API_KEY", "")
    with pytest.raises(agentvista.InvalidApiKey, match="AGENTVISTA_API_KEY"):
        agentvista.init(host=closed_port)
    # From the environment, checked the same way.
    monkeypatch.setenv("AGENTVISTA_API_KEY", wrong_digit)
    with pytest.raises(agentvista.InvalidApiKey, match="checksum"):
        agentvista.init(host=closed_port)
    assert no_network == []
    assert not agentvista.is_initialized()
    # The secret part is never echoed back.
    assert good[12:40] not in caplog.text
    with pytest.raises(agentvista.InvalidApiKey) as raised:
        agentvista.init(api_key=wrong_digit, host=closed_port)
    assert good[12:40] not in str(raised.value) and good[12:40] not in repr(raised.value)


def test_a_well_formed_key_the_server_does_not_know_is_refused_at_init(
    server: Server, account: Account,
) -> None:
    secret = "".join(secrets.choice(BASE62) for _ in range(32))
    unknown = _keys.generate_unchecked(secrets.token_hex(4), secret)
    with pytest.raises(agentvista.AuthenticationError) as caught:
        agentvista.init(api_key=unknown, host=server.base)
    err = caught.value
    assert isinstance(err, agentvista.AgentVistaError)
    assert err.status == 401
    assert err.code == "invalid_api_key"
    assert err.message  # the server's sentence
    assert secret not in str(err)
    assert not agentvista.is_initialized()
    with pytest.raises(agentvista.AuthenticationError):
        agentvista.ping(unknown, host=server.base)


def test_an_unreachable_server_does_not_stop_the_application(
    closed_port: str, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="agentvista")
    key = _keys.generate_unchecked("0123abcd", "Q" * 32)
    agentvista.init(api_key=key, host=closed_port)  # well-formed: only a warning
    assert agentvista.is_initialized()
    warnings = agentvista_warnings(caplog)
    assert len(warnings) == 1 and "could not check" in warnings[0].getMessage()
    with pytest.raises(agentvista.ConnectionFailed):
        agentvista.ping(key, host=closed_port)


# 3 ------------------------------------------------------------------------------------------


def test_a_read_only_key_is_refused_at_init_naming_the_write_scope(
    server: Server, account: Account,
) -> None:
    read_key = account.key("dashboard", "read")
    with pytest.raises(agentvista.PermissionDenied) as caught:
        agentvista.init(api_key=read_key, host=server.base)
    err = caught.value
    assert err.status == 403
    assert err.code == "insufficient_scope"
    assert err.required_scope == "write"
    assert "write" in str(err)
    assert not agentvista.is_initialized()

    # The same key is what ping wants; a write-only key is not.
    assert agentvista.ping(read_key, host=server.base) == {"status": "ok"}
    write_key = account.key("sdk", "write")
    agentvista.init(api_key=write_key, host=server.base)
    with pytest.raises(agentvista.PermissionDenied) as caught:
        agentvista.ping()  # the key and host of init
    assert caught.value.required_scope == "read"
    assert agentvista.ping(read_key) == {"status": "ok"}  # init's host


def test_a_read_only_key_without_the_check_is_warned_about_once_when_exporting(
    server: Server, account: Account, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    read_key = account.key("dashboard", "read")
    agentvista.init(api_key=read_key, host=server.base, verify=False)
    for _ in range(3):
        with agentvista.trace("step"):
            pass
        agentvista.flush()
    warnings = agentvista_warnings(caplog)
    assert len(warnings) == 1, [w.getMessage() for w in warnings]
    assert "'write' scope" in warnings[0].getMessage()
    assert_no_secret(caplog.text, account)


# 4 ------------------------------------------------------------------------------------------


def test_a_key_revoked_mid_run_is_warned_about_once_and_the_application_goes_on(
    server: Server, account: Account, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    write_key = account.key("sdk", "write")
    read_key = account.key("dashboard", "read")
    agentvista.init(api_key=write_key, host=server.base)

    @agentvista.trace("step")
    def step(i: int) -> int:
        return i * 2

    assert step(1) == 2
    assert agentvista.flush()
    assert len(server.get_json("/api/v1/traces/", read_key)["data"]) == 1
    assert agentvista_warnings(caplog) == []

    account.revoke(write_key)  # returns once no server accepts the key

    for _ in range(3):  # three exports, each refused
        assert [step(i) for i in range(4)] == [0, 2, 4, 6]
        with agentvista.trace("with block"):
            pass
        agentvista.flush()
    warnings = agentvista_warnings(caplog)
    assert len(warnings) == 1, [w.getMessage() for w in warnings]
    message = warnings[0].getMessage()
    assert "revoked" in message and "401" in message and write_key[:11] in message
    # The OpenTelemetry exporter's own per-batch lines for the 401 are muted.
    assert not [r for r in caplog.records if r.name.startswith("opentelemetry.exporter")
                and r.levelno >= logging.WARNING], caplog.text
    # Nothing more was stored.
    assert len(server.get_json("/api/v1/traces/", read_key)["data"]) == 1
    assert_no_secret(caplog.text, account)


# 5 ------------------------------------------------------------------------------------------


def first_of_next_month_utc() -> str:
    now = time.gmtime()
    year, month = (now.tm_year + 1, 1) if now.tm_mon == 12 else (now.tm_year, now.tm_mon + 1)
    return time.strftime(
        "%Y-%m-%dT%H:%M:%SZ",
        time.gmtime(calendar.timegm((year, month, 1, 0, 0, 0, 0, 0, 0))),
    )


def test_the_monthly_limit_is_warned_about_once_naming_the_reset_and_billing(
    server: Server, account: Account, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    account.set_plan(TINY_PLAN)
    write_key = account.key("sdk", "write")
    read_key = account.key("dashboard", "read")
    agentvista.init(api_key=write_key, host=server.base)

    @agentvista.trace
    def step(i: int) -> int:
        return i + 1

    assert [step(i) for i in range(TINY_EVENTS)] == [1, 2, 3]  # exactly the allowance
    assert agentvista.flush()
    usage = server.get_json("/api/v1/me/usage/", read_key)
    assert (usage["events_used"], usage["events_limit"]) == (TINY_EVENTS, TINY_EVENTS)
    assert agentvista_warnings(caplog) == []

    for _ in range(3):  # three exports, each over the limit
        assert [step(i) for i in range(2)] == [1, 2]
        agentvista.flush()
    warnings = agentvista_warnings(caplog)
    assert len(warnings) == 1, [w.getMessage() for w in warnings]
    message = warnings[0].getMessage()
    assert "monthly event limit" in message
    # The numbers come from the google.rpc.ErrorInfo detail of the server's OTLP answer.
    assert f"({TINY_EVENTS} of {TINY_EVENTS} events used)" in message
    assert "Settings → Billing" in message
    assert f"resets at {first_of_next_month_utc()}" in message
    assert not [r for r in caplog.records if r.name.startswith("opentelemetry.exporter")
                and r.levelno >= logging.WARNING], caplog.text
    assert server.get_json("/api/v1/me/usage/", read_key)["events_used"] == TINY_EVENTS
    assert_no_secret(caplog.text, account)


# 6 ------------------------------------------------------------------------------------------


def test_init_twice_with_the_same_settings_does_nothing_and_other_settings_replace(
    server: Server, account: Account, monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_key = account.key("sdk", "write")
    read_key = account.key("dashboard", "read")
    agentvista.init(api_key=write_key, host=server.base)
    first = agentvista._state
    assert first is not None

    calls: list[str] = []
    real_request = requests.Session.request

    def counting(self: requests.Session, method: str, url: str, *a: Any, **k: Any) -> Any:
        calls.append(url)
        return real_request(self, method, url, *a, **k)

    monkeypatch.setattr(requests.Session, "request", counting)
    agentvista.init(api_key=write_key, host=server.base)
    agentvista.init(api_key=write_key, host=server.base + "/")  # the same host
    monkeypatch.setenv("AGENTVISTA_API_KEY", write_key)
    monkeypatch.setenv("AGENTVISTA_HOST", server.base)
    agentvista.init()  # the same settings, from the environment
    assert agentvista._state is first
    assert calls == []  # no second key check

    with agentvista.trace("once"):
        trace_id = current_ids()["trace_id"]
    assert agentvista.flush()
    assert calls == [server.base + "/otlp/v1/traces"]  # exported once, by one exporter
    events = trace_events(server, read_key, trace_id)
    assert [e["name"] for e in events] == ["once"]

    # Other settings: the setup is replaced (the previous one flushed and shut down).
    agentvista.init(api_key=write_key, host=server.base, service_name="second")
    assert agentvista._state is not first and agentvista._state is not None
    with agentvista.trace("after replace"):
        trace_id = current_ids()["trace_id"]
    assert agentvista.flush()
    events = trace_events(server, read_key, trace_id)
    assert [e["name"] for e in events] == ["after replace"]
    assert "second" in str(events[0]["body"])

    agentvista.shutdown()
    assert not agentvista.is_initialized()
    with agentvista.trace("after shutdown") as span:  # a no-op, not an error
        assert not span.is_recording()
    assert agentvista.flush()


def test_a_keys_own_rate_limit_is_raised_as_rate_limited_with_when_to_retry(
    server: Server, account: Account
) -> None:
    key = account.key("slow", "read", "--rate-limit", "1", "--burst", "1")
    assert agentvista.ping(key, host=server.base) == {"status": "ok"}
    with pytest.raises(agentvista.RateLimited) as refused:
        agentvista.ping(key, host=server.base)
    assert refused.value.code == "rate_limited"
    assert refused.value.details["retry_after"] >= 1
    assert_no_secret(str(refused.value), account)
