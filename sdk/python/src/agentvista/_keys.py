"""API keys: the local format and checksum check the contract fixes, and safe display.

A key is ``av_<P>_<S><C>``: ``P`` 8 lowercase hex characters (the public prefix), ``S`` 32
base62 characters (the secret), ``C`` the CRC-32 (IEEE) of everything before it written as 6
base62 digits, most significant first, left-padded with ``0``. 50 characters in all.

Only the prefix (``av_`` + ``P``, 11 characters) may ever be shown: in logs, reprs and error
messages.
"""

from __future__ import annotations

import re
import zlib

from ._errors import InvalidApiKey

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
KEY_LENGTH = 50
PREFIX_LENGTH = 11
CHECKSUM_LENGTH = 6
_KEY_RE = re.compile(r"^av_[0-9a-f]{8}_[0-9A-Za-z]{38}$")
_PREFIX_RE = re.compile(r"^av_[0-9a-f]{8}")


def base62(value: int, width: int = CHECKSUM_LENGTH) -> str:
    """``value`` in base62, most significant digit first, left-padded with ``0`` to ``width``."""
    digits = []
    while value:
        value, digit = divmod(value, 62)
        digits.append(BASE62[digit])
    return "".join(reversed(digits)).rjust(width, "0")


def checksum(body: str) -> str:
    """The 6-digit checksum of the first 44 characters of a key."""
    return base62(zlib.crc32(body.encode("ascii")) & 0xFFFFFFFF)


def display(key: str | None) -> str:
    """What may be shown of ``key``: its public prefix and an ellipsis, never the secret."""
    if key and _PREFIX_RE.match(key):
        return key[:PREFIX_LENGTH] + "…"
    return "<not an AgentVista key>"


def validate(key: object) -> str:
    """Returns ``key`` if it has the contract's format and checksum; raises
    :class:`~agentvista.InvalidApiKey` (naming at most the prefix) otherwise."""
    if key is None or key == "":
        raise InvalidApiKey(
            "No AgentVista API key: pass agentvista.init(api_key=...) or set the "
            "AGENTVISTA_API_KEY environment variable (create a key with the write scope in "
            "Settings → API Keys)."
        )
    if not isinstance(key, str):
        raise InvalidApiKey(
            f"The AgentVista API key must be a string, not {type(key).__name__}."
        )
    stripped = key.strip()
    if stripped != key:
        # Tolerate what a copy-paste or a shell adds, but not anything inside the key.
        key = stripped
    if not _KEY_RE.match(key):
        raise InvalidApiKey(
            f"Malformed AgentVista API key ({display(key)}, {len(key)} characters): a key looks "
            f"like av_<8 hex>_<38 letters or digits>, {KEY_LENGTH} characters in all. Copy it "
            "again from where it was created."
        )
    body, given = key[:-CHECKSUM_LENGTH], key[-CHECKSUM_LENGTH:]
    if checksum(body) != given:
        raise InvalidApiKey(
            f"Malformed AgentVista API key ({display(key)}): its checksum does not match, so it "
            "was mistyped or truncated. Copy it again from where it was created."
        )
    return key


def generate_unchecked(prefix_hex: str, secret: str) -> str:
    """A key of the right format and checksum from its parts (for tests: a key the server
    has never issued). Not a way to create usable keys."""
    body = f"av_{prefix_hex}_{secret}"
    return body + checksum(body)
