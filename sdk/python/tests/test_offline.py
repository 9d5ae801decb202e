"""What the SDK does on its own, without a server. (Keys the real server issues are checked
by the same code in test_sdk.py: `init` validates them locally first.)"""

from __future__ import annotations

import importlib.metadata
import zlib

import pytest
from google.rpc import status_pb2

import agentvista
from agentvista import _http, _keys


def test_the_installed_package_reports_the_version_it_was_built_with() -> None:
    # The metadata's version is read from agentvista/version.py at build time; the User-Agent
    # the server sees carries the same.
    version = importlib.metadata.version("agentvista")
    assert agentvista.__version__ == version
    assert _http.USER_AGENT.endswith(f"/{version}")


def test_base62_checksum_digits_follow_the_contract() -> None:
    assert _keys.base62(0) == "000000"
    assert _keys.base62(61) == "00000z"
    assert _keys.base62(62) == "000010"
    assert _keys.base62(0xFFFFFFFF) == "4gfFC3"  # the largest CRC-32 fits in 6 digits
    body = "av_a1b2c3d4_" + "0123456789abcdefghijABCDEFGHIJxy"
    assert _keys.checksum(body) == _keys.base62(zlib.crc32(body.encode()))
    key = body + _keys.checksum(body)
    assert len(key) == 50 and _keys.validate(key) == key
    assert _keys.validate(f"  {key}\n") == key  # what a copy-paste adds around it


def test_only_the_prefix_is_ever_displayed() -> None:
    key = _keys.generate_unchecked("a1b2c3d4", "S" * 32)
    assert _keys.display(key) == "av_a1b2c3d4…"
    assert _keys.display("not a key at all") == "<not an AgentVista key>"
    with pytest.raises(agentvista.InvalidApiKey) as caught:
        _keys.validate(key[:-1] + ("A" if key[-1] != "A" else "B"))
    assert "S" * 8 not in str(caught.value)


def test_an_otlp_refusal_is_read_from_the_status_and_www_authenticate() -> None:
    body = status_pb2.Status(
        code=7, message='The API key lacks the "write" scope this endpoint needs.'
    ).SerializeToString()
    answer = _http.parse_error(
        403,
        {
            "content-type": "application/x-protobuf",
            "www-authenticate": 'Bearer error="insufficient_scope", scope="write"',
        },
        body,
    )
    err = _http.error_for(answer)
    assert isinstance(err, agentvista.PermissionDenied)
    assert (err.status, err.code, err.required_scope) == (403, "insufficient_scope", "write")
    assert err.message.startswith("The API key lacks")

    answer = _http.parse_error(
        401,
        {"Content-Type": "application/x-protobuf",
         "WWW-Authenticate": 'Bearer realm="agentvista", error="invalid_token"'},
        status_pb2.Status(code=16, message="Invalid API key.").SerializeToString(),
    )
    assert isinstance(_http.error_for(answer), agentvista.AuthenticationError)
    assert answer.code == "invalid_api_key"


def test_a_json_error_of_the_api_is_read_with_its_fields() -> None:
    answer = _http.parse_error(
        429,
        {"Content-Type": "application/json", "Retry-After": "120"},
        b'{"error": "monthly_event_limit_exceeded", "message": "No room.", "limit": 3, '
        b'"used": 3, "resets_at": "2026-12-01T00:00:00Z"}',
    )
    assert answer.code == "monthly_event_limit_exceeded"
    assert answer.retry_after == 120.0
    assert answer.details["limit"] == 3
    assert isinstance(_http.error_for(answer), agentvista.RateLimited)


def test_trace_takes_a_name_once() -> None:
    with pytest.raises(TypeError):
        agentvista.trace("a", name="b")  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        agentvista.trace(42)  # type: ignore[call-overload]


def test_trace_before_init_is_a_no_op_that_keeps_return_values_and_exceptions() -> None:
    @agentvista.trace
    def double(x: int) -> int:
        return 2 * x

    @agentvista.trace(name="fails")
    def fails() -> None:
        raise KeyError("mine")

    assert double(2) == 4
    assert double.__name__ == "double"
    with pytest.raises(KeyError, match="mine"):
        fails()
    with agentvista.trace("step") as span:
        assert not span.is_recording()
    assert agentvista.flush() is True


def test_a_host_without_a_scheme_is_a_configuration_error() -> None:
    key = _keys.generate_unchecked("a1b2c3d4", "S" * 32)
    with pytest.raises(agentvista.ConfigurationError):
        agentvista.init(api_key=key, host="api.agentvista.dev")
