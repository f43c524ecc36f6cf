"""The rule kinds a pack may use, by name: one module each, one line here.

The order is the order of judgement when several rules break at once (the first breach
recorded is the first here: a hard limit before a soft one), so the order of a pack's rules
never changes a verdict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from services.challenges.domain.rules.base import Breach, Context, Objective, Params, Rule, RuleError, Warning
from services.challenges.domain.rules.consistency import Consistency
from services.challenges.domain.rules.daily_loss import DailyLoss
from services.challenges.domain.rules.daily_profit_cap import DailyProfitCap
from services.challenges.domain.rules.flat_by import FlatBy
from services.challenges.domain.rules.inactivity import Inactivity
from services.challenges.domain.rules.max_loss import MaxLoss
from services.challenges.domain.rules.max_position import MaxPosition
from services.challenges.domain.rules.min_profitable_days import MinProfitableDays
from services.challenges.domain.rules.min_trading_days import MinTradingDays
from services.challenges.domain.rules.profit_target import ProfitTarget
from services.challenges.domain.rules.time_limit import TimeLimit

KINDS: dict[str, type[Rule]] = {
    k.kind: k
    for k in (
        MaxLoss,
        TimeLimit,
        Inactivity,
        DailyLoss,
        ProfitTarget,
        DailyProfitCap,
        MinTradingDays,
        MinProfitableDays,
        Consistency,
        MaxPosition,
        FlatBy,
    )
}
ORDER = {kind: i for i, kind in enumerate(KINDS)}


def build(specs: Sequence[Any], size: Decimal, path: str = "rules") -> tuple[Rule, ...]:
    """A phase's rules from its pack entries `{kind, params}` at one account size, in judgement
    order; every problem in any of them is reported at once."""
    if not isinstance(specs, Sequence) or isinstance(specs, str):
        raise RuleError({path: "must be a list of {kind, params}"})
    violations: dict[str, str] = {}
    entries: list[tuple[int, type[Rule], Mapping[str, Any]]] = []
    seen: set[str] = set()
    for i, spec in enumerate(specs):
        where = f"{path}[{i}]"
        if not isinstance(spec, Mapping) or set(spec) - {"kind", "params"}:
            violations[where] = "must be {kind, params}"
            continue
        cls = KINDS.get(str(spec.get("kind")))
        if cls is None:
            violations[f"{where}.kind"] = "unknown rule kind; one of " + ", ".join(KINDS)
            continue
        if cls.kind in seen:
            violations[f"{where}.kind"] = f"{cls.kind} appears twice"
            continue
        seen.add(cls.kind)
        entries.append((i, cls, spec.get("params") or {}))
    # The target first: a drawdown may lock at it.
    target: Decimal | None = None
    for i, cls, params in entries:
        if cls is ProfitTarget:
            try:
                target = ProfitTarget.build(Params(params, size, f"{path}[{i}].params"), Context(size, None)).amount
            except RuleError as exc:
                violations.update(exc.violations)
    built: list[Rule] = []
    for i, cls, params in entries:
        try:
            built.append(cls.build(Params(params, size, f"{path}[{i}].params"), Context(size, target)))
        except RuleError as exc:
            violations.update(exc.violations)
    if violations:
        raise RuleError(violations)
    return tuple(sorted(built, key=lambda r: ORDER[r.kind]))


def dump(rules: Sequence[Rule]) -> list[dict[str, Any]]:
    return [{"kind": r.kind, "params": r.to_params()} for r in rules]


__all__ = ["KINDS", "Breach", "Objective", "Rule", "RuleError", "Warning", "build", "dump"]
