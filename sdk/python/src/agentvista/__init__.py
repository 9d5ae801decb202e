"""AgentVista SDK for Python: traces of your agent, sent to AgentVista with OpenTelemetry.

    import os, agentvista
    agentvista.init(api_key=os.environ["AGENTVISTA_API_KEY"])

    @agentvista.trace
    def answer(question): ...

See README.md for configuration, and what happens when the key is revoked or the monthly
event limit is reached (logged once on the ``agentvista`` logger, never raised).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from . import _exporter, _http, _keys, _trace
from ._errors import (
    AgentVistaError,
    APIError,
    AuthenticationError,
    ConfigurationError,
    ConnectionFailed,
    InvalidApiKey,
    PermissionDenied,
    RateLimited,
)
from ._generation import Generation, generation
from ._trace import trace
from .version import __version__

__all__ = [
    "APIError",
    "AgentVistaError",
    "AuthenticationError",
    "ConfigurationError",
    "ConnectionFailed",
    "Generation",
    "InvalidApiKey",
    "PermissionDenied",
    "RateLimited",
    "__version__",
    "flush",
    "generation",
    "init",
    "is_initialized",
    "ping",
    "shutdown",
    "trace",
]

logger = logging.getLogger("agentvista")

#: The server when neither ``host=`` nor ``AGENTVISTA_HOST`` says otherwise.
DEFAULT_HOST = "http://127.0.0.1:8080"
ENV_API_KEY = "AGENTVISTA_API_KEY"
ENV_HOST = "AGENTVISTA_HOST"
#: Seconds the exporter gives one export (retries included).
EXPORT_TIMEOUT_SECONDS = 10


class _State:
    """What one successful ``init`` set up. Its repr shows the key's prefix only."""

    def __init__(
        self,
        api_key: str,
        host: str,
        service_name: str | None,
        verified: bool,
        provider: TracerProvider,
        exporter: _exporter.AgentVistaSpanExporter,
    ) -> None:
        self.api_key = api_key
        self.host = host
        self.service_name = service_name
        self.verified = verified
        self.provider = provider
        self.exporter = exporter

    def __repr__(self) -> str:
        return (
            f"agentvista._State(key={_keys.display(self.api_key)}, host={self.host!r}, "
            f"service_name={self.service_name!r}, verified={self.verified})"
        )


_lock = threading.RLock()
_state: _State | None = None
_atexit_registered = False


def _resolve_host(host: str | None) -> str:
    value = host if host is not None else os.environ.get(ENV_HOST) or DEFAULT_HOST
    value = value.strip().rstrip("/")
    if not value.startswith(("http://", "https://")):
        raise ConfigurationError(
            f"AgentVista host {value!r} must start with http:// or https:// "
            f"(from {'host=' if host is not None else ENV_HOST})."
        )
    return value


def _resolve_key(api_key: str | None) -> str:
    return _keys.validate(api_key if api_key is not None else os.environ.get(ENV_API_KEY))


def _install_global_provider() -> None:
    """Makes OpenTelemetry's global tracer provider follow ``init`` — unless the application
    installed a provider of its own, which is left alone (``agentvista.trace`` still sends to
    AgentVista; the application's other spans go where it configured them)."""
    current = trace_api.get_tracer_provider()
    if current is _trace.GLOBAL_PROVIDER:
        return
    if isinstance(current, trace_api.ProxyTracerProvider):
        trace_api.set_tracer_provider(_trace.GLOBAL_PROVIDER)
        if trace_api.get_tracer_provider() is _trace.GLOBAL_PROVIDER:
            return
    logger.info(
        "AgentVista: the application already set an OpenTelemetry tracer provider (%s); it "
        "is left as it is, and only agentvista.trace spans are sent to AgentVista.",
        type(trace_api.get_tracer_provider()).__name__,
    )


def _build(
    api_key: str, host: str, service_name: str | None
) -> tuple[TracerProvider, _exporter.AgentVistaSpanExporter]:
    attributes: dict[str, Any] = {}
    if service_name:
        attributes["service.name"] = service_name
    # Resource.create also reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
    provider = TracerProvider(resource=Resource.create(attributes), shutdown_on_exit=False)
    otlp = OTLPSpanExporter(
        endpoint=host + _http.OTLP_TRACES_PATH,
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=EXPORT_TIMEOUT_SECONDS,
        compression=Compression.Gzip,
        session=_exporter.RecordingSession(),
    )
    exporter = _exporter.AgentVistaSpanExporter(otlp, _keys.display(api_key))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider, exporter


def init(
    api_key: str | None = None,
    *,
    host: str | None = None,
    service_name: str | None = None,
    verify: bool = True,
) -> None:
    """Sends this process's traces to AgentVista.

    - ``api_key``: a key with the ``write`` scope; default ``$AGENTVISTA_API_KEY``. A missing
      or malformed key (format or checksum) raises :class:`InvalidApiKey` before any network
      call.
    - ``host``: the server; default ``$AGENTVISTA_HOST``, else ``http://127.0.0.1:8080``.
    - ``service_name``: OpenTelemetry's ``service.name``; default ``$OTEL_SERVICE_NAME``.
    - ``verify``: first prove the key can ingest, with an empty OTLP export (nothing is stored
      or counted). A refusal raises: :class:`AuthenticationError` (401: unknown, revoked or
      expired key), :class:`PermissionDenied` (403: the key lacks ``write``), :class:`APIError`
      (another 4xx: is ``host`` an AgentVista server?). A server that cannot be reached, or
      answers 429 or 5xx, is logged as a warning and ``init`` goes on: the exporter retries,
      and the application does not fail to start because of its tracing.

    Calling ``init`` again with the same key, host and service name does nothing (no request,
    same provider). With different ones it replaces the setup: the previous one is flushed
    and shut down (spans started before and ended after the switch are dropped). Spans are
    flushed when the interpreter exits.
    """
    global _state, _atexit_registered
    key = _resolve_key(api_key)
    resolved_host = _resolve_host(host)
    with _lock:
        state = _state
        if (
            state is not None
            and state.api_key == key
            and state.host == resolved_host
            and state.service_name == service_name
            and (state.verified or not verify)
        ):
            logger.debug("AgentVista: init called again with the same settings; nothing to do")
            return

        verified = False
        if verify:
            try:
                _http.check_ingest(resolved_host, key)
                verified = True
            except ConnectionFailed as err:
                logger.warning(
                    "AgentVista: could not check the API key %s: %s. Tracing is set up anyway; "
                    "the exporter retries and logs if the server stays unreachable.",
                    _keys.display(key), err,
                )
            except (RateLimited, APIError) as err:
                if isinstance(err, APIError) and (err.status or 0) < 500:
                    raise
                logger.warning(
                    "AgentVista: could not check the API key %s now (%s). Tracing is set up "
                    "anyway.",
                    _keys.display(key), err,
                )

        provider, exporter = _build(key, resolved_host, service_name)
        previous = _state
        _state = _State(key, resolved_host, service_name, verified, provider, exporter)
        _exporter.install_log_filter()
        _trace.CURRENT.provider = provider
        _trace.CURRENT.generation += 1
        _install_global_provider()
        if not _atexit_registered:
            atexit.register(_at_exit)
            _atexit_registered = True
    if previous is not None:
        logger.info("AgentVista: init with new settings replaces the previous setup")
        _shutdown_provider(previous.provider)
    logger.info(
        "AgentVista: sending traces to %s%s with the key %s%s",
        resolved_host, _http.OTLP_TRACES_PATH, _keys.display(key),
        "" if verified else (" (not verified)" if verify else ""),
    )


def is_initialized() -> bool:
    """Whether ``init`` has set up tracing (and ``shutdown`` has not undone it)."""
    return _state is not None


def ping(api_key: str | None = None, *, host: str | None = None) -> dict[str, Any]:
    """Checks a key with the server's ping endpoint (``GET /api/v1/me/api-keys/ping/``, which
    needs the ``read`` scope) and returns its answer, ``{"status": "ok"}``.

    The key and host default to those of ``init``, then to the environment variables. Raises
    :class:`InvalidApiKey` (malformed, before any request), :class:`AuthenticationError`
    (401), :class:`PermissionDenied` (403: the key lacks ``read`` — an SDK key usually has
    ``write`` only), :class:`ConnectionFailed` or :class:`APIError`.
    """
    state = _state
    key = _resolve_key(
        api_key if api_key is not None else (state.api_key if state is not None else None)
    )
    resolved_host = _resolve_host(
        host if host is not None else (state.host if state is not None else None)
    )
    return _http.ping(resolved_host, key)


def flush(timeout_millis: int = 30000) -> bool:
    """Exports every span ended so far, synchronously, and says whether they got there.

    ``False`` if an export since the previous ``flush`` (this one's, or one the batch
    processor ran in the background meanwhile) failed: refused by the server (400, 401, 403,
    413, 429 for the monthly event limit, or another answer that is not retried) or not
    delivered within the exporter's timeout (``EXPORT_TIMEOUT_SECONDS``, retries included).
    ``True`` otherwise, also when there was nothing to send or ``init`` was not called. Each
    call starts a new period: a refusal reported once does not make the next ``flush`` fail.
    Failures are logged, never raised.
    """
    state = _state
    if state is None:
        return True
    try:
        flushed = bool(state.provider.force_flush(timeout_millis))
    except Exception:  # never break the application
        logger.exception("AgentVista: flushing spans failed")
        flushed = False
    # Read after force_flush, which returns once the exports it ran are done; read even if
    # it failed, so that this call's period ends here either way.
    failed = state.exporter.take_outcome()
    if failed:
        logger.debug("AgentVista: %d exports failed since the previous flush", failed)
    return flushed and not failed


def _shutdown_provider(provider: TracerProvider) -> None:
    try:
        provider.shutdown()
    except Exception:
        logger.exception("AgentVista: shutting down the tracer provider failed")


def shutdown() -> None:
    """Flushes and stops tracing; ``trace`` becomes a no-op until the next ``init``."""
    global _state
    with _lock:
        state, _state = _state, None
        _trace.CURRENT.provider = None
        _trace.CURRENT.generation += 1
    if state is not None:
        _shutdown_provider(state.provider)


def _at_exit() -> None:
    with contextlib.suppress(Exception):  # nothing may fail at exit
        shutdown()


def _reset() -> None:
    """For tests: back to the state before any ``init`` (spans pending are flushed first)."""
    shutdown()
