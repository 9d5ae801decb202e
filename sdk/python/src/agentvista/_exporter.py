"""The span exporter: OpenTelemetry's OTLP/HTTP (protobuf) exporter, wrapped so that the
failures a user must act on are reported once, in plain words, on the ``agentvista`` logger.

The OTLP exporter reports a failed export only as ``SpanExportResult.FAILURE`` and an error
line of its own per batch. To see *why* an export failed, it is given a ``requests.Session``
of ours that remembers, per thread, the last answer of the export in progress. Then:

- 401 (the key was revoked, expired or is unknown): one warning for the exporter's lifetime;
- 403 (the key lacks ``write``): one warning for the exporter's lifetime;
- 429 for the monthly event limit: one warning per quota period, naming when it resets
  (``Retry-After`` or the body's ``resets_at``) and pointing at Settings → Billing;

and the OTLP exporter's own per-batch error lines for those answers are filtered out (only
for exports of this exporter, by a per-thread flag), so that the application's log does not
get one line per batch. Every other failure (network, 5xx, 400, …) is logged by the OTLP
exporter as usual. Nothing here ever raises into the application or the batch processor.

Retries stay the OTLP exporter's: it retries 429, 502, 503 and 504 (honouring
``Retry-After``) and connection errors within its timeout. The one exception is the monthly
event limit: that 429 does not clear before the month ends, so the session turns it into
:class:`MonthlyLimitReached`, which the exporter treats as a final failure.

``agentvista.flush()`` must say whether the spans got there, which neither the batch
processor's ``force_flush`` (``True`` once the exports ran, whatever their result) nor the
OTLP exporter's (nothing to flush) tells; so each export's result is counted here, and
:meth:`AgentVistaSpanExporter.take_outcome` reports and clears it.
"""

from __future__ import annotations

import calendar
import datetime as _dt
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import requests
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from requests.structures import CaseInsensitiveDict

from . import _http

logger = logging.getLogger("agentvista")

#: The loggers the OTLP/HTTP exporter writes its per-batch failure lines to (its module
#: logger, and the shared HTTP client's in recent versions).
OTLP_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http",
    "opentelemetry.exporter.otlp.common.http",
)

BILLING_ADVICE = (
    "Check your usage in Settings → Billing and consider upgrading your plan or enabling "
    "spend caps."
)

_tls = threading.local()


class _Answer:
    """The parts of an HTTP answer the exporter needs (no request, so no key)."""

    __slots__ = ("at", "content", "headers", "reason", "status")

    def __init__(self, response: requests.Response) -> None:
        self.status = response.status_code
        self.headers: Mapping[str, str] = CaseInsensitiveDict(response.headers)
        self.content = response.content or b""
        self.reason = response.reason or ""
        self.at = time.time()

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


def _is_monthly_limit(answer: _Answer) -> bool:
    if answer.status != 429:
        return False
    # The server names the error in the Status's ErrorInfo; a server without it is told by
    # its headers: the key's rate limit is the 429 that sends RateLimit-* headers.
    code = _http.parse_error(answer.status, answer.headers, answer.content, answer.reason).code
    if code is not None:
        return code == "monthly_event_limit_exceeded"
    return answer.header("RateLimit-Limit") is None


def _handled(answer: _Answer) -> bool:
    """Whether this exporter reports the answer itself (and mutes the OTLP exporter's line)."""
    return answer.status in (401, 403) or _is_monthly_limit(answer)


class MonthlyLimitReached(Exception):
    """The monthly event limit's 429, raised by :class:`RecordingSession` in place of the
    answer.

    The OTLP exporter retries a 429 whenever its ``Retry-After`` (or, without one, its
    backoff) fits in what is left of its timeout — near the month's end, or from a server
    that sends no ``Retry-After`` — and no retry can succeed before the month ends: it would
    only cost requests and delay ``flush``. The exporter decides on the status alone, so the
    answer is kept from it: its transport turns an exception from the session into a failed
    attempt that is not a connection error, which it does not retry. (An exporter that let
    the exception out of ``export`` instead is handled by :class:`AgentVistaSpanExporter`.)"""

    def __init__(self) -> None:
        super().__init__("the monthly event limit of the plan is reached (HTTP 429)")


class RecordingSession(requests.Session):
    """The session the OTLP exporter sends with: remembers the last answer in the thread's
    export in progress, marks the answers this module reports itself, and stops the
    exporter from retrying the monthly limit."""

    def __init__(self) -> None:
        super().__init__()
        self.headers["User-Agent"] = _http.USER_AGENT

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        response = super().request(*args, **kwargs)
        try:
            answer = _Answer(response)
            monthly_limit = _is_monthly_limit(answer)
            if getattr(_tls, "recording", False):
                _tls.answer = answer
                _tls.mute = _handled(answer)
        except Exception:  # noqa: BLE001 - never let bookkeeping break an export
            return response
        if monthly_limit:
            raise MonthlyLimitReached()
        return response


class _MuteHandledFailures(logging.Filter):
    """Drops the OTLP exporter's log lines about an answer that ``agentvista`` reports once
    itself — only in a thread that is running one of its exports."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_tls, "mute", False)


_FILTER = _MuteHandledFailures()
_filter_installed = False
_filter_lock = threading.Lock()


def install_log_filter() -> None:
    global _filter_installed
    with _filter_lock:
        if _filter_installed:
            return
        for name in OTLP_LOGGERS:
            logging.getLogger(name).addFilter(_FILTER)
        _filter_installed = True


def _first_of_next_month_utc(now: float) -> float:
    t = time.gmtime(now)
    year, month = (t.tm_year + 1, 1) if t.tm_mon == 12 else (t.tm_year, t.tm_mon + 1)
    return float(calendar.timegm((year, month, 1, 0, 0, 0, 0, 0, 0)))


def _parse_rfc3339(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        at = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=_dt.timezone.utc)
    return at.timestamp()


def _format_utc(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def _format_delay(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min"
    return f"{seconds} s"


class AgentVistaSpanExporter(SpanExporter):
    """Delegates to an ``OTLPSpanExporter`` built with a :class:`RecordingSession`; reports
    401, 403 and the monthly event limit once. Holds no key (only its display prefix)."""

    def __init__(self, delegate: SpanExporter, key_display: str) -> None:
        self._delegate = delegate
        self._key_display = key_display
        self._lock = threading.Lock()
        self._warned_unauthorized = False
        self._warned_forbidden = False
        #: Until when (epoch seconds) the monthly-limit warning given holds.
        self._quota_warned_until: float | None = None
        #: Exports that failed since the last ``take_outcome``. Exports run in the batch
        #: processor's thread as well as in ``flush``'s, hence the lock.
        self._outcome_lock = threading.Lock()
        self._failed_exports = 0

    def __repr__(self) -> str:
        return f"AgentVistaSpanExporter(key={self._key_display})"

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        _tls.recording = True
        _tls.answer = None
        _tls.mute = False
        try:
            result = self._delegate.export(spans)
            answer: _Answer | None = getattr(_tls, "answer", None)
        except MonthlyLimitReached:
            # Reported below like the answer it stands for, should an exporter let the
            # session's exception through.
            result = SpanExportResult.FAILURE
            answer = getattr(_tls, "answer", None)
        except Exception as err:  # noqa: BLE001 - never raise into the processor
            self._record(False)
            logger.error(
                "AgentVista: exporting %d spans failed: %s: %s",
                len(spans), type(err).__name__, err,
            )
            return SpanExportResult.FAILURE
        finally:
            _tls.recording = False
            _tls.mute = False
            _tls.answer = None
        self._record(result is SpanExportResult.SUCCESS)
        if result is not SpanExportResult.SUCCESS and answer is not None:
            try:
                self._report(answer, len(spans))
            except Exception:
                logger.debug("AgentVista: could not report a failed export", exc_info=True)
        return result

    def _report(self, answer: _Answer, count: int) -> None:
        if answer.status == 401:
            with self._lock:
                if self._warned_unauthorized:
                    return
                self._warned_unauthorized = True
            error = _http.parse_error(answer.status, answer.headers, answer.content, answer.reason)
            logger.warning(
                "AgentVista refused the API key %s (HTTP 401 %s): the key was revoked, has "
                "expired or is unknown. Spans are dropped from now on; create a key with the "
                "write scope in Settings → API Keys and pass it to agentvista.init(). "
                "This warning is not repeated.",
                self._key_display, error.code or "invalid_api_key",
            )
        elif answer.status == 403:
            with self._lock:
                if self._warned_forbidden:
                    return
                self._warned_forbidden = True
            error = _http.parse_error(answer.status, answer.headers, answer.content, answer.reason)
            scope = error.details.get("required_scope") or "write"
            logger.warning(
                "AgentVista: the API key %s lacks the %r scope that sending traces needs "
                "(HTTP 403): %s Spans are dropped. This warning is not repeated.",
                self._key_display, scope, error.message,
            )
        elif _is_monthly_limit(answer):
            self._report_quota(answer, count)

    def _report_quota(self, answer: _Answer, count: int) -> None:
        error = _http.parse_error(answer.status, answer.headers, answer.content, answer.reason)
        resets_at = _parse_rfc3339(error.details.get("resets_at"))
        if resets_at is None and error.retry_after is not None:
            resets_at = answer.at + error.retry_after
            if error.retry_after >= 120:
                # Retry-After is whole seconds until the period's start (midnight UTC).
                resets_at = round(resets_at / 60.0) * 60.0
        if resets_at is None:
            # The contract's period: the calendar month, UTC.
            resets_at = _first_of_next_month_utc(answer.at)
        with self._lock:
            now = time.time()
            if self._quota_warned_until is not None and now < self._quota_warned_until:
                return
            self._quota_warned_until = resets_at
        numbers = ""
        limit, used = error.details.get("limit"), error.details.get("used")
        if isinstance(limit, int):
            numbers = f" ({used} of {limit} events used)" if isinstance(used, int) else (
                f" ({limit} events)"
            )
        logger.warning(
            "AgentVista: the monthly event limit of your plan is reached%s (HTTP 429): spans "
            "are dropped until the limit resets at %s (in %s). %s This warning is not repeated "
            "before then.",
            numbers, _format_utc(resets_at), _format_delay(resets_at - answer.at),
            BILLING_ADVICE,
        )

    def _record(self, delivered: bool) -> None:
        if not delivered:
            with self._outcome_lock:
                self._failed_exports += 1

    def take_outcome(self) -> int:
        """How many exports failed (refused, or not delivered within the exporter's timeout)
        since the previous call; starts the count again, so that each ``flush`` reports its
        own period only."""
        with self._outcome_lock:
            failed, self._failed_exports = self._failed_exports, 0
        return failed

    def shutdown(self, timeout_millis: float = 30000, **kwargs: Any) -> None:
        try:
            self._delegate.shutdown()
        except Exception:
            logger.debug("AgentVista: the exporter's shutdown failed", exc_info=True)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        try:
            return bool(self._delegate.force_flush(timeout_millis))
        except Exception:  # noqa: BLE001
            return False

