"""Exact decimals on the wire: parse strictly, format canonically."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from services.common.errors import invalid_argument


def parse(value: str, field: str, *, positive: bool = False, optional: bool = False) -> Decimal | None:
    if value == "" and optional:
        return None
    try:
        d = Decimal(value)
    except (InvalidOperation, TypeError):
        raise invalid_argument({field: 'must be a decimal number such as "1.25"'}) from None
    if not d.is_finite():
        raise invalid_argument({field: "must be finite"})
    if positive and d <= 0:
        raise invalid_argument({field: "must be greater than zero"})
    return d


def fmt(d: Decimal | None) -> str:
    if d is None:
        return ""
    # Normalise -0 and trailing exponent forms: "100000.00" stays as stored.
    s = format(d, "f")
    return "0" if s in ("-0", "0") else s
