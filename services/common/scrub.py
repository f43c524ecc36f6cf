"""What never leaves a process in a log line or an error report: secrets, by name and by shape.

By name: a field whose name says it holds a secret (password, token, …) is blanked at any
depth. By shape: inside any text (an exception's message, a formatted traceback, a URL) an
argon2 hash, a JWT, a `password=…`-style pair and the password of a database URL are
masked, because a driver's error message quotes the values it was given.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

SECRET_MARKERS = ("password", "token", "secret", "authorization", "private_key", "dsn", "cookie", "hash")
REDACTED = "[REDACTED]"

_SHAPES = (
    (re.compile(r"\$argon2(?:id|i|d)\$[^\s'\",)\]}]+"), REDACTED),
    (re.compile(r"\beyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*"), REDACTED),  # a JWT
    (re.compile(r"(?i)\b(password|passwd|secret|token|access_token)=([^\s&'\",)]+)"), rf"\1={REDACTED}"),
    (re.compile(r"(://[^:/@\s]+:)([^@\s]+)@"), rf"\1{REDACTED}@"),  # scheme://user:PASSWORD@host
)


def scrub_text(text: str) -> str:
    for pattern, replacement in _SHAPES:
        text = pattern.sub(replacement, text)
    return text


def secret_name(name: object) -> bool:
    lowered = str(name).lower()
    return any(m in lowered for m in SECRET_MARKERS)


def scrub(value: Any) -> Any:
    """`value` with secrets blanked by name and masked by shape, however deep."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, Mapping):
        return {k: REDACTED if secret_name(k) else scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value
