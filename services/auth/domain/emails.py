"""Email normalisation: one account per address, whatever its case or Unicode spelling.

NFKC first (fullwidth and compatibility forms fold to their plain letters), then the
uniqueness key is the case-folded address. Lookalikes that NFKC leaves distinct are refused
rather than kept apart: invisible and bidi formatting characters (`admin\u200b@…`), control
characters, whitespace, and dots where no mail system puts one (a trailing dot, "..", a
label starting or ending with a dot or hyphen).
"""

from __future__ import annotations

import re
import unicodedata

# Other (Cc control, Cf format: zero-width and bidi marks, Cs, Co, Cn) and separators (Z*).
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})
_LOCAL = re.compile(r"[^@.]+(?:\.[^@.]+)*")
_LABEL = re.compile(r"[^\W_](?:[\w-]{0,61}[^\W_])?")


def problem(raw: str) -> str | None:
    """Why `raw` is not an address we accept, or None."""
    email = unicodedata.normalize("NFKC", raw)
    if any(unicodedata.category(ch) in _REFUSED_CATEGORIES for ch in email):
        return "must not contain spaces, invisible, bidi or control characters"
    if len(email) > 254 or email.count("@") != 1:
        return "must be one address of at most 254 characters"
    local, domain = email.split("@")
    if len(local) > 64 or not _LOCAL.fullmatch(local):
        return "the part before @ must be 1-64 characters with no leading, trailing or double dot"
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels) or len(labels[-1]) < 2:
        return "the domain must be labels separated by single dots, with no trailing dot"
    return None


def normalise(raw: str) -> tuple[str, str] | None:
    """Return (email as displayed, uniqueness key) or None when it is not an address."""
    email = unicodedata.normalize("NFKC", raw.strip())
    if problem(email) is not None:
        return None
    local, _, domain = email.rpartition("@")
    email = f"{local}@{domain.lower()}"
    return email, email.casefold()
