"""Rule packs: the rules a challenge is judged by, as versioned data.

A pack is JSON (stored in the database, versioned); a challenge copies its pack's
rules for its phase and account size when it is created, so it is always judged by
the rules it began under, whatever happens to the pack later.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from services.challenges.domain import rules as rule_kinds
from services.challenges.domain.rules import Rule, RuleError

D = Decimal


@dataclass(frozen=True)
class Rules:
    """The rules of one phase at one account size, amounts resolved to money: what a
    challenge copies when it is created and is judged by for its whole life."""

    pack: str
    version: int
    phase: int
    final_phase: bool
    timezone: str
    reset_time: time
    initial_balance: Decimal
    warning_share: Decimal
    commission_per_lot: Decimal  # per lot or contract, per side
    next_plan: str | None
    rules: tuple[Rule, ...]

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def of(self, kind: str) -> Rule | None:
        return next((r for r in self.rules if r.kind == kind), None)

    def limit(self, kind: str) -> Decimal | None:
        rule = self.of(kind)
        return rule.limit() if rule is not None else None

    def counted_profit(self, a: Any) -> Decimal:
        """Closed profit toward the target: capped per day when a daily_profit_cap applies."""
        cap = self.of("daily_profit_cap")
        if cap is None:
            return Decimal(a.balance - a.initial_balance)
        return sum((cap.counted(p) for p in a.daily_pnl.values()), Decimal(0))  # type: ignore[attr-defined]

    def levels(self, a: Any) -> dict[str, dict[str, str]]:
        """Each loss limit's floor and amount now: what events carry so that risk measures
        how much of a limit is used from the rules the challenge is judged by."""
        found = {}
        for rule in self.rules:
            level = rule.level(a, self)
            if level is not None:
                found[rule.kind] = {"floor": str(level[0]), "limit": str(level[1])}
        return found

    @property
    def eod_at(self) -> time | None:
        """The local time a trailing drawdown takes the end-of-day balance at; None: at the reset."""
        rule = self.of("max_loss")
        return rule.eod_at if rule is not None else None  # type: ignore[attr-defined]

    def intraday_trail(self) -> tuple[Decimal, Decimal | None] | None:
        rule = self.of("max_loss")
        return rule.intraday_trail() if rule is not None else None  # type: ignore[attr-defined]

    def to_json(self) -> str:
        d = {
            "format": 2,
            "pack": self.pack,
            "version": self.version,
            "phase": self.phase,
            "final_phase": self.final_phase,
            "timezone": self.timezone,
            "reset_time": self.reset_time.isoformat(),
            "initial_balance": str(self.initial_balance),
            "warning_share": str(self.warning_share),
            "commission_per_lot": str(self.commission_per_lot),
            "next_plan": self.next_plan,
            "rules": rule_kinds.dump(self.rules),
        }
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, raw: str | dict[str, Any]) -> Rules:
        """A challenge's stored rules; those stored before rule kinds (format 1, one fixed set
        of fields) are read as the same rules, with the semantics they were judged by."""
        d = json.loads(raw) if isinstance(raw, str) else dict(raw)
        initial = D(d["initial_balance"])
        specs = d["rules"] if d.get("format") == 2 else _v1_rules(d)
        return cls(
            pack=d["pack"],
            version=int(d["version"]),
            phase=int(d["phase"]),
            final_phase=bool(d["final_phase"]),
            timezone=d["timezone"],
            reset_time=time.fromisoformat(d["reset_time"]),
            initial_balance=initial,
            warning_share=D(d["warning_share"]),
            commission_per_lot=D(d["commission_per_lot"]),
            next_plan=d.get("next_plan"),
            rules=rule_kinds.build(specs, initial),
        )


def _none(v: Any) -> Any:
    return None if v in (None, "None") else v


def _v1_rules(d: dict[str, Any]) -> list[dict[str, Any]]:
    """Format 1's fields as rule kinds, judged as format 1 judged them: every limit breaks at a
    touch, a trading day is any day with a fill, consistency is best day ÷ net profit ≤ share."""
    lock = _none(d.get("max_loss_lock"))
    mode = {"static": "static", "trailing_eod": "trailing_eod", "trailing_intraday": "trailing_peak"}
    specs: list[dict[str, Any]] = [
        {
            "kind": "max_loss",
            "params": {
                "amount": str(d["max_loss"]),
                "mode": mode[d.get("max_loss_kind", "static")],
                **({"lock": str(lock), "lock_level": True} if lock is not None else {"lock": "none"}),
            },
        }
    ]
    if _none(d.get("daily_loss")) is not None:
        reference = "max_balance_equity" if d.get("day_start") == "max_balance_equity" else "balance"
        specs.append(
            {
                "kind": "daily_loss",
                "params": {"amount": str(d["daily_loss"]), "reference": reference, "hard": bool(d["daily_loss_hard"])},
            }
        )
    if _none(d.get("profit_target")) is not None:
        specs.append({"kind": "profit_target", "params": {"amount": str(d["profit_target"])}})
    if int(d.get("min_trading_days") or 0):
        specs.append({"kind": "min_trading_days", "params": {"days": int(d["min_trading_days"]), "count": "any_fill"}})
    if _none(d.get("consistency")) is not None:
        specs.append({"kind": "consistency", "params": {"pct": str(D(str(d["consistency"])) * 100)}})
    return specs


# Keys a v2 phase (or the pack's defaults) may carry besides its rules.
_PHASE_KEYS = {"rules", "next_plan", "commission_per_lot", "warning_pct"}


@dataclass(frozen=True)
class RulePack:
    """A pack definition: per phase, a list of rules `{kind, params}` (see rules/), where a
    parameter may be given per account size, plus the phase's commission and next plan.

    Packs published before rule kinds (format 1: `*_pct` / `*_amount` fields in `defaults`,
    `phases` and `sizes`) are still read, as the same rules."""

    id: str
    version: int
    name: str
    timezone: str
    reset_time: str
    phases: list[dict[str, Any]]
    defaults: dict[str, Any] = field(default_factory=dict)
    sizes: dict[str, dict[str, Any]] = field(default_factory=dict)  # format 1 only

    @property
    def format(self) -> int:
        return 2 if all("rules" in ph for ph in self.phases) else 1

    def rules_for(self, phase: int, size: Decimal) -> Rules:
        if not 1 <= phase <= len(self.phases):
            raise RuleError({"phase": f"pack {self.id} has no phase {phase}"})
        if self.format == 1:
            return Rules.from_json(self._v1_fields(phase, size))
        spec = {**self.defaults, **self.phases[phase - 1]}
        unknown = sorted(set(spec) - _PHASE_KEYS)
        if unknown:
            raise RuleError({f"phases[{phase - 1}].{k}": "not a phase setting" for k in unknown})
        return Rules(
            pack=self.id,
            version=self.version,
            phase=phase,
            final_phase=phase == len(self.phases),
            timezone=self.timezone,
            reset_time=time.fromisoformat(self.reset_time),
            initial_balance=size,
            warning_share=D(str(spec.get("warning_pct", 80))) / 100,
            commission_per_lot=D(str(spec.get("commission_per_lot", "0"))),
            next_plan=spec.get("next_plan"),
            rules=rule_kinds.build(spec["rules"], size, f"phases[{phase - 1}].rules"),
        )

    def _v1_fields(self, phase: int, size: Decimal) -> dict[str, Any]:
        """Format 1: the phase's fields at one size, as format 1 stored them per challenge."""
        spec = {**self.defaults, **self.phases[phase - 1], **self.sizes.get(str(size.normalize()), {})}
        spec.update(self.sizes.get(f"{size:.2f}", {}))

        def money(key: str) -> Decimal | None:
            if spec.get(f"{key}_amount") is not None:
                return D(str(spec[f"{key}_amount"]))
            if spec.get(f"{key}_pct") is not None:
                return (size * D(str(spec[f"{key}_pct"])) / 100).quantize(D("0.01"))
            return None

        max_loss = money("max_loss")
        if max_loss is None:
            raise RuleError({f"phases[{phase - 1}].max_loss_pct": f"pack {self.id} phase {phase} has no max loss"})
        lock = spec.get("max_loss_lock")  # "initial" or an offset above it
        lock_level = size if lock == "initial" else size + D(str(lock)) if lock is not None else None
        consistency = spec.get("consistency_pct")
        return {
            "pack": self.id,
            "version": self.version,
            "phase": phase,
            "final_phase": phase == len(self.phases),
            "timezone": self.timezone,
            "reset_time": self.reset_time,
            "initial_balance": str(size),
            "profit_target": money("profit_target"),
            "daily_loss": money("daily_loss"),
            "day_start": spec.get("day_start", "balance"),
            "daily_loss_hard": bool(spec.get("daily_loss_hard", True)),
            "max_loss": max_loss,
            "max_loss_kind": spec.get("max_loss_kind", "static"),
            "max_loss_lock": lock_level,
            "min_trading_days": int(spec.get("min_trading_days", 0)),
            "consistency": D(str(consistency)) / 100 if consistency is not None else None,
            "warning_share": str(D(str(spec.get("warning_pct", 80))) / 100),
            "commission_per_lot": str(D(str(spec.get("commission_per_lot", "0")))),
            "next_plan": spec.get("next_plan"),
        }

    def account_sizes(self, default: bool = True) -> list[Decimal]:
        """The sizes the pack gives per-size values for (when none are per size, 100,000 —
        the size a pack is validated at — or, without `default`, none: any size will do)."""
        found: set[str] = set(self.sizes)
        for ph in self.phases:
            for rule in ph.get("rules", []):
                for v in (rule.get("params") or {}).values() if isinstance(rule, dict) else ():
                    if isinstance(v, dict):
                        found |= set(v)
        return sorted({D(s).quantize(D("0.01")) for s in found}) or ([D("100000.00")] if default else [])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_settings(self, settings: dict[str, Any]) -> RulePack:
        """This pack with parameters overridden (for a what-if run): `commission_per_lot`, or
        `KIND.PARAM` for that parameter of every phase's rule of that kind."""
        d = json.loads(json.dumps(self.to_dict()))
        if self.format != 2:
            raise RuleError({"--set": "only packs with rule kinds take settings"})
        for name, value in settings.items():
            if name == "commission_per_lot":
                d["defaults"]["commission_per_lot"] = str(value)
                for ph in d["phases"]:
                    ph.pop("commission_per_lot", None)
                continue
            kind, dot, param = name.partition(".")
            targets = [r for ph in d["phases"] for r in ph["rules"] if r["kind"] == kind]
            if not dot or not param or not targets:
                raise RuleError({name: "not commission_per_lot, nor KIND.PARAM of a rule this pack has"})
            for r in targets:
                r.setdefault("params", {})[param] = value
        return RulePack.from_dict(d)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RulePack:
        """A pack as published; every phase at every size must resolve, or it is refused
        (RuleError with the field paths of every problem)."""
        if not isinstance(d, dict):
            raise RuleError({"": "a pack is a JSON object"})
        known = {"id", "version", "name", "timezone", "reset_time", "phases", "defaults", "sizes"}
        problems = {k: "not a pack field" for k in sorted(set(d) - known)}
        problems |= {
            k: "is required" for k in ("id", "version", "name", "timezone", "reset_time", "phases") if k not in d
        }
        if problems:
            raise RuleError(problems)
        if not isinstance(d["phases"], list) or not d["phases"] or not all(isinstance(p, dict) for p in d["phases"]):
            raise RuleError({"phases": "must be a non-empty list of phases"})
        try:
            ZoneInfo(str(d["timezone"]))
        except (ValueError, KeyError):
            raise RuleError({"timezone": "not an IANA time zone"}) from None
        try:
            time.fromisoformat(str(d["reset_time"]))
        except ValueError:
            raise RuleError({"reset_time": 'must be a local time such as "17:00"'}) from None
        if not isinstance(d["version"], int) or isinstance(d["version"], bool) or d["version"] < 1:
            raise RuleError({"version": "must be a whole number from 1"})
        pack = cls(**d)
        for ph in range(1, len(pack.phases) + 1):
            for size in pack.account_sizes():
                pack.rules_for(ph, size)
        return pack
