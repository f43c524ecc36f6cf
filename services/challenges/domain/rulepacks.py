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

D = Decimal


@dataclass(frozen=True)
class Rules:
    """The rules of one phase at one account size, all amounts resolved to money."""

    pack: str
    version: int
    phase: int
    final_phase: bool
    timezone: str
    reset_time: time
    initial_balance: Decimal
    profit_target: Decimal | None  # money above the initial balance, on closed balance
    daily_loss: Decimal | None  # money
    daily_loss_basis: str  # "initial" | "day_start": how the amount was derived (documentation)
    day_start: str  # "balance" | "max_balance_equity": the daily loss reference
    daily_loss_hard: bool  # False: a breach pauses trading until the next trading day
    max_loss: Decimal  # money
    max_loss_kind: str  # "static" | "trailing_eod" | "trailing_intraday"
    max_loss_lock: Decimal | None  # the floor stops trailing once it reaches this level
    min_trading_days: int
    consistency: Decimal | None  # best day ÷ total profit must stay below this share
    warning_share: Decimal
    commission_per_lot: Decimal
    next_plan: str | None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def to_json(self) -> str:
        d = asdict(self)
        d["reset_time"] = self.reset_time.isoformat()
        return json.dumps(d, default=str, sort_keys=True)

    @classmethod
    def from_json(cls, raw: str | dict[str, Any]) -> Rules:
        d = json.loads(raw) if isinstance(raw, str) else dict(raw)
        d["reset_time"] = time.fromisoformat(d["reset_time"])
        for k in ("initial_balance", "max_loss", "warning_share", "commission_per_lot"):
            d[k] = D(d[k])
        for k in ("profit_target", "daily_loss", "max_loss_lock", "consistency"):
            d[k] = None if d[k] in (None, "None") else D(d[k])
        return cls(**d)


@dataclass(frozen=True)
class RulePack:
    """A pack definition. Amounts are either a share of the initial balance (`*_pct`)
    or money per account size (`sizes`)."""

    id: str
    version: int
    name: str
    timezone: str
    reset_time: str
    phases: list[dict[str, Any]]
    defaults: dict[str, Any] = field(default_factory=dict)
    sizes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def rules_for(self, phase: int, size: Decimal) -> Rules:
        if not 1 <= phase <= len(self.phases):
            raise ValueError(f"pack {self.id} has no phase {phase}")
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
            raise ValueError(f"pack {self.id} phase {phase} has no max loss")
        lock = spec.get("max_loss_lock")  # "initial" or an offset above it
        lock_level = None
        if lock == "initial":
            lock_level = size
        elif lock is not None:
            lock_level = size + D(str(lock))
        return Rules(
            pack=self.id,
            version=self.version,
            phase=phase,
            final_phase=phase == len(self.phases),
            timezone=self.timezone,
            reset_time=time.fromisoformat(self.reset_time),
            initial_balance=size,
            profit_target=money("profit_target"),
            daily_loss=money("daily_loss"),
            daily_loss_basis=spec.get("daily_loss_basis", "initial"),
            day_start=spec.get("day_start", "balance"),
            daily_loss_hard=bool(spec.get("daily_loss_hard", True)),
            max_loss=max_loss,
            max_loss_kind=spec.get("max_loss_kind", "static"),
            max_loss_lock=lock_level,
            min_trading_days=int(spec.get("min_trading_days", 0)),
            consistency=D(str(spec["consistency_pct"])) / 100 if spec.get("consistency_pct") is not None else None,
            warning_share=D(str(spec.get("warning_pct", 80))) / 100,
            commission_per_lot=D(str(spec.get("commission_per_lot", "0"))),
            next_plan=spec.get("next_plan"),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RulePack:
        pack = cls(**d)
        for ph in range(1, len(pack.phases) + 1):  # every phase must resolve, or the pack is refused
            pack.rules_for(ph, D("100000.00"))
        ZoneInfo(pack.timezone)
        time.fromisoformat(pack.reset_time)
        return pack


FTMO = RulePack(
    id="ftmo-2step",
    version=1,
    name="FTMO-style two-step evaluation",
    timezone="Europe/Prague",
    reset_time="00:00",
    defaults={
        # 5% of the initial balance, measured on equity against the day-start balance.
        "daily_loss_pct": "5",
        "daily_loss_basis": "initial",
        "day_start": "balance",
        "daily_loss_hard": True,
        "max_loss_pct": "10",
        "max_loss_kind": "static",
        "min_trading_days": 4,
        "commission_per_lot": "5.00",
    },
    phases=[{"profit_target_pct": "10", "next_plan": "ftmo-phase2"}, {"profit_target_pct": "5"}],
)

TOPSTEP = RulePack(
    id="topstep-combine",
    version=1,
    name="Topstep-style Trading Combine",
    timezone="America/Chicago",
    reset_time="17:00",
    defaults={
        "max_loss_kind": "trailing_eod",
        "max_loss_lock": "initial",
        "daily_loss_hard": False,
        "day_start": "balance",
        "daily_loss_basis": "day_start",
        "consistency_pct": "50",
        "commission_per_lot": "2.50",
    },
    phases=[{}],
    sizes={
        "50000.00": {"profit_target_amount": "3000", "max_loss_amount": "2000", "daily_loss_amount": "1000"},
        "100000.00": {"profit_target_amount": "6000", "max_loss_amount": "3000", "daily_loss_amount": "2000"},
        "150000.00": {"profit_target_amount": "9000", "max_loss_amount": "4500", "daily_loss_amount": "3000"},
    },
)

APEX = RulePack(
    id="apex-intraday",
    version=1,
    name="Apex-style evaluation (intraday trailing drawdown)",
    timezone="America/New_York",
    reset_time="18:00",
    defaults={
        "max_loss_kind": "trailing_intraday",
        "max_loss_lock": "100",
        "min_trading_days": 1,
        "commission_per_lot": "2.00",
    },
    phases=[{}],
    sizes={
        "25000.00": {"profit_target_amount": "1500", "max_loss_amount": "1500"},
        "50000.00": {"profit_target_amount": "3000", "max_loss_amount": "2500"},
        "100000.00": {"profit_target_amount": "6000", "max_loss_amount": "3000"},
    },
)

BUILT_IN = (FTMO, TOPSTEP, APEX)
