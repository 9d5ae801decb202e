"""Talking to the server directly: the key check of ``init`` and ``ping``, and reading error
answers (the JSON ``{"error", "message", ...}`` of the API, the ``google.rpc.Status`` of OTLP).
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from . import _errors
from .version import __version__

USER_AGENT = f"agentvista-python/{__version__}"
OTLP_TRACES_PATH = "/otlp/v1/traces"
PING_PATH = "/api/v1/me/api-keys/ping/"
PROTOBUF = "application/x-protobuf"
#: How long ``init``'s key check and ``ping`` wait for the server.
TIMEOUT_SECONDS = 10.0

_GRPC_CODES = {
    3: "INVALID_ARGUMENT",
    7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED",
    14: "UNAVAILABLE",
    16: "UNAUTHENTICATED",
}
_AUTH_PARAM = re.compile(r'([A-Za-z_]+)\s*=\s*"([^"]*)"')


@dataclass
class ErrorAnswer:
    """What an error answer says, whichever format it came in."""

    status: int
    code: str | None
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    retry_after: float | None = None


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` (delay-seconds or HTTP-date) as seconds from ``now``."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        at = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    now = time.time() if now is None else now
    return max(at.timestamp() - now, 0.0)


def _auth_params(headers: Mapping[str, str]) -> dict[str, str]:
    value = headers.get("WWW-Authenticate") or headers.get("www-authenticate") or ""
    return {k.lower(): v for k, v in _AUTH_PARAM.findall(value)}


ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"


def _decode_rpc_status(content: bytes) -> dict[str, Any] | None:
    """A protobuf ``google.rpc.Status`` as its JSON mapping (``code``, ``message`` and the
    ``google.rpc.ErrorInfo`` details), or None."""
    try:
        from google.rpc import error_details_pb2, status_pb2
    except ImportError:  # pragma: no cover - a dependency of the OTLP exporter
        return None
    try:
        status = status_pb2.Status.FromString(content)
    except Exception:  # noqa: BLE001 - not a Status: the caller falls back to the HTTP reason
        return None
    details = []
    for any_detail in status.details:
        if any_detail.type_url != ERROR_INFO_TYPE:
            continue
        try:
            info = error_details_pb2.ErrorInfo.FromString(any_detail.value)
        except Exception:  # noqa: BLE001, S112 - an unreadable detail is left out
            continue
        details.append({
            "@type": ERROR_INFO_TYPE,
            "reason": info.reason,
            "domain": info.domain,
            "metadata": dict(info.metadata),
        })
    return {"code": status.code, "message": status.message, "details": details}


def _error_info(body: dict[str, Any]) -> dict[str, Any] | None:
    """The server's ``google.rpc.ErrorInfo`` in a Status: the contract's error code as
    ``reason``, its other fields (as text) in ``metadata``."""
    for detail in body.get("details") or []:
        if (
            isinstance(detail, dict)
            and detail.get("@type") == ERROR_INFO_TYPE
            and detail.get("domain") == "agentvista"
            and isinstance(detail.get("reason"), str)
        ):
            return detail
    return None


def parse_error(
    status: int, headers: Mapping[str, str], content: bytes, reason: str = ""
) -> ErrorAnswer:
    """Reads an error answer of the API (JSON) or of an OTLP endpoint (``google.rpc.Status``
    in protobuf or JSON, whose ``google.rpc.ErrorInfo`` detail gives the contract's error code
    and fields). Without that detail (an older server), the code is recovered from the status
    and ``WWW-Authenticate``."""
    content_type = (headers.get("Content-Type") or headers.get("content-type") or "").lower()
    body: Any = None
    if "json" in content_type or content[:1] in (b"{", b"["):
        try:
            body = json.loads(content.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            body = None
    elif "protobuf" in content_type and content:
        body = _decode_rpc_status(content)

    code: str | None = None
    message = ""
    details: dict[str, Any] = {}
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, str):  # the contract: {"error": "<code>", "message": ...}
            code = error
            message = str(body.get("message") or "")
            details = {k: v for k, v in body.items() if k not in ("error", "message")}
        elif isinstance(error, dict):  # {"error": {"code": ..., "message": ...}}
            code = error.get("code") if isinstance(error.get("code"), str) else None
            message = str(error.get("message") or "")
            details = {k: v for k, v in error.items() if k not in ("code", "message")}
        elif isinstance(body.get("code"), int):  # google.rpc.Status
            message = str(body.get("message") or "")
            details["grpc_code"] = _GRPC_CODES.get(body["code"], str(body["code"]))
            info = _error_info(body)
            if info is not None:
                code = info["reason"]
                for name, value in (info.get("metadata") or {}).items():
                    # Numbers travel as text in ErrorInfo's metadata.
                    details[name] = int(value) if str(value).isdigit() else value

    params = _auth_params(headers)
    if code is None:
        if status == 401:
            code = "invalid_api_key" if params.get("error") == "invalid_token" else (
                "missing_api_key" if "realm" in params else None
            )
        elif status == 403 and params.get("error") == "insufficient_scope":
            code = "insufficient_scope"
        elif status == 429:
            rate_headers = {k.lower() for k in headers}
            code = "rate_limited" if "ratelimit-limit" in rate_headers else None
    if status == 403 and "required_scope" not in details and params.get("scope"):
        details["required_scope"] = params["scope"]
    retry_after = retry_after_seconds(headers.get("Retry-After") or headers.get("retry-after"))
    if retry_after is not None:
        details.setdefault("retry_after", retry_after)
    if not message:
        message = f"The server answered {status} {reason}".strip() + "."
    return ErrorAnswer(status, code, message, details, retry_after)


def error_for(answer: ErrorAnswer) -> _errors.AgentVistaError:
    """The typed exception for an error answer."""
    cls: type[_errors.AgentVistaError]
    if answer.status == 401:
        cls = _errors.AuthenticationError
    elif answer.status == 403:
        cls = _errors.PermissionDenied
    elif answer.status == 429:
        cls = _errors.RateLimited
    else:
        cls = _errors.APIError
    message = answer.message
    scope = answer.details.get("required_scope")
    if answer.status == 403 and isinstance(scope, str) and scope not in message:
        message = f"{message} The key needs the {scope!r} scope."
    return cls(message, status=answer.status, code=answer.code, details=answer.details)


def _session_headers(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}", "User-Agent": USER_AGENT}


def _request(
    method: str, url: str, api_key: str, *, data: bytes | None = None,
    content_type: str | None = None, timeout: float = TIMEOUT_SECONDS,
) -> requests.Response:
    headers = _session_headers(api_key)
    if content_type:
        headers["Content-Type"] = content_type
    try:
        with requests.Session() as session:
            return session.request(
                method, url, headers=headers, data=data, timeout=timeout, allow_redirects=False
            )
    except requests.RequestException as err:
        # The exception's text names the URL, never the headers: no key in it.
        raise _errors.ConnectionFailed(
            f"Could not reach the AgentVista server at {url}: {type(err).__name__}: {err}"
        ) from None


def check_ingest(host: str, api_key: str) -> None:
    """Proves ``api_key`` may ingest: an empty OTLP export (an ``ExportTraceServiceRequest``
    with no resource spans, so nothing is stored or counted) to ``/otlp/v1/traces``. Raises
    the typed exception for the server's refusal, :class:`ConnectionFailed` if unreachable."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    body = ExportTraceServiceRequest().SerializeToString()
    response = _request(
        "POST", host + OTLP_TRACES_PATH, api_key, data=body, content_type=PROTOBUF
    )
    if 200 <= response.status_code < 300:
        return
    raise error_for(
        parse_error(response.status_code, response.headers, response.content, response.reason)
    )


def ping(host: str, api_key: str) -> dict[str, Any]:
    """``GET /api/v1/me/api-keys/ping/`` (scope ``read``): the server's JSON answer, or the
    typed exception."""
    response = _request("GET", host + PING_PATH, api_key)
    if 200 <= response.status_code < 300:
        try:
            answer = response.json()
        except ValueError:
            raise _errors.APIError(
                "The ping endpoint answered with something that is not JSON.",
                status=response.status_code,
            ) from None
        return answer if isinstance(answer, dict) else {"answer": answer}
    raise error_for(
        parse_error(response.status_code, response.headers, response.content, response.reason)
    )
