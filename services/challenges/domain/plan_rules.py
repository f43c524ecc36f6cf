"""A plan's rules in words, per account size: what ListPlans returns and the console shows."""

from __future__ import annotations

from decimal import Decimal

from services.challenges.domain.rulepacks import RulePack
from services.challenges.domain.rules.wording import Wording


def described(pack: RulePack, phase: int, currency: str, sizes: list[Decimal]) -> list[tuple[Decimal, list[str]]]:
    """Per size, one sentence per rule of the plan's phase, in the pack's own order."""
    out = []
    for size in sizes:
        rules = pack.rules_for(phase, size)
        w = Wording(currency, rules.timezone, rules.reset_time, size)
        out.append((size, [r.describe(w) for r in rules.rules]))
    return out
