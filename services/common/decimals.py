"""Exact decimals on the wire: parse strictly, format canonically."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

from services.common.errors import invalid_argument

# Plain notation only: Python's Decimal() also takes "1_0", "1e3", " 1 ", Arabic-Indic digits
# and 5,000-digit strings, none of which an API client means. Per-field digit limits are the
# input guard's (options.proto); this is the outer bound for any decimal a handler parses.
_PLAIN = re.compile(r"-?[0-9]{1,30}(?:\.[0-9]{1,30})?")


def parse(value: str, field: str, *, positive: bool = False, optional: bool = False) -> Decimal | None:
    if value == "" and optional:
        return None
    if not isinstance(value, str) or _PLAIN.fullmatch(value) is None:
        raise invalid_argument({field: 'must be a plain decimal number such as "1.25"'})
    d = Decimal(value)
    if positive and d <= 0:
        raise invalid_argument({field: "must be greater than zero"})
    return d


def fmt(d: Decimal | None) -> str:
    if d is None:
        return ""
    # Normalise -0 and trailing exponent forms: "100000.00" stays as stored.
    s = format(d, "f")
    return "0" if s in ("-0", "0") else s


CENT = Decimal("0.01")


def money(d: Decimal | str | None) -> str:
    """An amount of the account currency on the wire: always to the cent ("5000.00", never
    "5000" or "5000.0000"); "" for none. Half-up, as a statement rounds."""
    if d is None or d == "":
        return ""
    return fmt(Decimal(d).quantize(CENT, rounding=ROUND_HALF_UP))


def scaled(d: Decimal | None, like: Decimal) -> str:
    """`d` at the scale of `like` (a price at its instrument's quote precision, a quantity at
    its step); "" for none."""
    if d is None:
        return ""
    exponent = like.as_tuple().exponent
    if not isinstance(exponent, int):
        return fmt(d)
    return fmt(d.quantize(Decimal(1).scaleb(exponent), rounding=ROUND_HALF_UP))
