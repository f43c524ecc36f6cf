"""Email normalisation: one account per address, whatever its case."""

from __future__ import annotations

import re
import unicodedata

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")


def normalise(raw: str) -> tuple[str, str] | None:
    """Return (email as displayed, uniqueness key) or None when it is not an address."""
    email = unicodedata.normalize("NFKC", raw).strip()
    if len(email) > 254 or not _EMAIL.match(email):
        return None
    local, _, domain = email.rpartition("@")
    email = f"{local}@{domain.lower()}"
    return email, email.casefold()
