"""What a span records of a function's arguments and return value: JSON (``repr`` for what
JSON cannot hold), each value cut to ``MAX_VALUE_BYTES`` and marked truncated, and every string
shaped like an AgentVista key replaced by its prefix — so that one large or secret argument
neither loses a whole export nor leaks."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import trace as trace_api

#: The most bytes of one captured value (UTF-8); longer ones are cut and marked truncated.
MAX_VALUE_BYTES = 32 * 1024

#: The attributes a captured input and output are recorded under.
INPUT = "agentvista.input"
OUTPUT = "agentvista.output"

# A key: `av_`, 8 lowercase hex digits, `_`, 38 letters or digits (checksum valid or not: a
# mistyped key is a secret too). Kept as its prefix, as the server's own redaction does.
_KEY = re.compile(r"(av_[0-9a-f]{8})_[0-9A-Za-z]{38}(?![0-9A-Za-z])")


def redact(text: str) -> str:
    """``text`` with every key-shaped string cut to its prefix and ``_[REDACTED]``."""
    return _KEY.sub(r"\1_[REDACTED]", text)


def serialise(value: Any) -> tuple[str, bool]:
    """``value`` as redacted JSON text of at most ``MAX_VALUE_BYTES`` bytes, and whether it was
    cut. A string is kept as it is (not quoted); what JSON cannot hold is written with
    ``repr``."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=repr)
        except (TypeError, ValueError):  # circular structures, keys JSON refuses
            text = repr(value)
    text = redact(text)
    encoded = text.encode("utf-8")
    if len(encoded) <= MAX_VALUE_BYTES:
        return text, False
    cut = encoded[:MAX_VALUE_BYTES].decode("utf-8", errors="ignore")
    # Redacted again: the cut may have split a key, leaving a shape the first pass missed.
    return redact(cut), True


def record(span: trace_api.Span, attribute: str, value: Any) -> None:
    """Sets ``attribute`` to ``value`` serialised, and ``<attribute>.truncated`` when cut."""
    if not span.is_recording():
        return
    text, truncated = serialise(value)
    span.set_attribute(attribute, text)
    if truncated:
        span.set_attribute(f"{attribute}.truncated", True)


def arguments(func: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    """The call's arguments by parameter name, without ``self`` and ``cls`` (a method's
    receiver says nothing of the step)."""
    try:
        bound = inspect.signature(func).bind_partial(*args, **kwargs)
    except (TypeError, ValueError):
        return {"args": list(args), "kwargs": dict(kwargs)}
    return {
        name: value
        for name, value in bound.arguments.items()
        if name not in ("self", "cls")
    }
