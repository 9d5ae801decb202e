"""The exceptions the SDK raises. Only ``init`` and ``ping`` raise; tracing never does."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class AgentVistaError(Exception):
    """Base class of every AgentVista SDK error.

    ``status`` is the HTTP status (``None`` when the server was not asked), ``code`` the
    contract's error code (``invalid_api_key``, ``insufficient_scope``, …), ``message`` the
    server's (or the SDK's) sentence for a human, ``details`` any further fields the server
    sent (``required_scope``, ``limit``, ``resets_at``, …).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.details: dict[str, Any] = dict(details or {})

    def __str__(self) -> str:
        parts = []
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.code:
            parts.append(self.code)
        if not parts:
            return self.message
        return f"{self.message} ({' '.join(parts)})"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={self.message!r}, status={self.status!r}, "
            f"code={self.code!r})"
        )


class InvalidApiKey(AgentVistaError, ValueError):
    """The API key is missing, or fails the format or checksum check. Raised before any
    network call."""


class AuthenticationError(AgentVistaError):
    """The server refused the key (HTTP 401): unknown, revoked or expired
    (``invalid_api_key``), or no key was sent (``missing_api_key``)."""


class PermissionDenied(AgentVistaError):
    """The key is valid but lacks the scope the endpoint needs (HTTP 403
    ``insufficient_scope``); ``required_scope`` names it."""

    @property
    def required_scope(self) -> str | None:
        scope = self.details.get("required_scope")
        return scope if isinstance(scope, str) else None


class RateLimited(AgentVistaError):
    """HTTP 429: the key's rate limit or the account's monthly event limit;
    ``retry_after`` is the server's ``Retry-After`` in seconds, if it sent one."""

    @property
    def retry_after(self) -> float | None:
        value = self.details.get("retry_after")
        return float(value) if isinstance(value, (int, float)) else None


class APIError(AgentVistaError):
    """Any other error answer of the server (400, 404, 5xx, …)."""


class ConnectionFailed(AgentVistaError):
    """The server could not be reached (refused, timed out, TLS failure, …)."""


class ConfigurationError(AgentVistaError, ValueError):
    """A setting other than the key is unusable (e.g. a host without ``http://``)."""
