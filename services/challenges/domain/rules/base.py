"""What a rule kind is: its parameters, read and validated from a pack, and what it does to an
account — its equity floor, its breach, its warning, its pass gate and its objective.

Each kind is one module in this package (one class, registered in `__init__`); the engine
asks every rule of a phase the same questions, so a new kind is one module and one registry
line. Rules are pure: they read the `Account` and the phase's `Rules`, and return values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from services.challenges.domain.engine import Account
    from services.challenges.domain.rulepacks import Rules
    from services.challenges.domain.rules.wording import Wording

ZERO = Decimal(0)
CENT = Decimal("0.01")
COMPARATORS = ("touch", "beyond")


class RuleError(ValueError):
    """A pack that cannot be judged by: field path -> what is wrong with it."""

    def __init__(self, violations: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in violations.items()))
        self.violations = dict(violations)


@dataclass(frozen=True)
class Breach:
    rule: str
    hard: bool
    parameters: dict[str, str]
    observed: dict[str, str]
    reason: str


@dataclass(frozen=True)
class Warning:
    rule: str
    used_share: Decimal
    limit: Decimal
    current: Decimal


@dataclass(frozen=True)
class Objective:
    rule: str
    limit: Decimal
    current: Decimal
    room_left: Decimal
    state: str  # OK | WARNING | BREACHED | MET


def crossed(equity: Decimal, floor: Decimal, comparator: str) -> bool:
    """`touch`: at the floor breaches (Topstep, Apex, E8); `beyond`: only below it (FTMO)."""
    return equity <= floor if comparator == "touch" else equity < floor


class Params:
    """A rule's parameters as a pack states them, read once each and checked.

    A value may be given per account size (`{"50000": "2000", "100000": "3000"}`); every
    parameter read must be known to the kind, and every one given must be read, so a misspelt
    name is an error rather than a rule silently judged by its default.
    """

    def __init__(self, raw: Mapping[str, Any], size: Decimal, path: str) -> None:
        if not isinstance(raw, Mapping):
            raise RuleError({path: "params must be an object"})
        self.raw, self.size, self.path = dict(raw), size, path
        self.read: set[str] = set()
        self.violations: dict[str, str] = {}

    def value(self, key: str) -> Any:
        """The parameter as given (at this account size when given per size), marked read."""
        self.read.add(key)
        v = self.raw.get(key)
        if isinstance(v, Mapping):
            for name in (f"{self.size:.2f}", f"{self.size.normalize():f}", str(int(self.size))):
                if name in v:
                    return v[name]
            self.violations[f"{self.path}.{key}"] = f"no value for account size {self.size:.2f}"
            return None
        return v

    def has(self, key: str) -> bool:
        return key in self.raw

    def decimal(self, key: str, default: Decimal | None = None, *, positive: bool = True) -> Decimal | None:
        v = self.value(key)
        if v is None:
            return default
        try:
            d = Decimal(str(v))
        except InvalidOperation:
            self.violations[f"{self.path}.{key}"] = "must be a decimal number"
            return default
        if not d.is_finite() or (positive and d <= 0):
            self.violations[f"{self.path}.{key}"] = "must be a positive number" if positive else "must be finite"
            return default
        return d

    def integer(self, key: str, default: int) -> int:
        v = self.value(key)
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, int | str) or not str(v).isdigit():
            self.violations[f"{self.path}.{key}"] = "must be a whole number"
            return default
        return int(v)

    def choice(self, key: str, options: tuple[str, ...], default: str) -> str:
        v = self.value(key)
        if v is None:
            return default
        if v not in options:
            self.violations[f"{self.path}.{key}"] = "must be one of " + ", ".join(options)
            return default
        return str(v)

    def flag(self, key: str, default: bool) -> bool:
        v = self.value(key)
        if v is None:
            return default
        if not isinstance(v, bool):
            self.violations[f"{self.path}.{key}"] = "must be true or false"
            return default
        return v

    def text(self, key: str, default: str) -> str:
        v = self.value(key)
        if v is None:
            return default
        if not isinstance(v, str) or not v or len(v) > 64:
            self.violations[f"{self.path}.{key}"] = "must be a short text"
            return default
        return v

    def money(self, base: Decimal, *, required: bool = True) -> Decimal | None:
        """`amount` in the account currency, or `pct` of `base` (the initial balance)."""
        amount, pct = self.decimal("amount"), self.decimal("pct")
        if amount is not None and pct is not None:
            self.violations[f"{self.path}.amount"] = "give amount or pct, not both"
        if amount is not None:
            return amount
        if pct is not None:
            return (base * pct / 100).quantize(CENT)
        given_but_bad = {f"{self.path}.amount", f"{self.path}.pct"} & set(self.violations)
        if required and not given_but_bad:
            self.violations[f"{self.path}.amount"] = "an amount or a pct is required"
        return None

    def done(self) -> None:
        for key in sorted(set(self.raw) - self.read):
            self.violations[f"{self.path}.{key}"] = "not a parameter of this rule"
        if self.violations:
            raise RuleError(self.violations)


@dataclass(frozen=True)
class Context:
    """What a rule may need from its phase when it is built."""

    initial_balance: Decimal
    profit_target: Decimal | None  # for a drawdown that locks at the target balance


class Rule:
    """A rule of one phase at one account size, its amounts resolved to money."""

    kind: ClassVar[str]

    @classmethod
    def build(cls, params: Params, ctx: Context) -> Rule:
        raise NotImplementedError

    def to_params(self) -> dict[str, Any]:
        """The resolved parameters, enough to build the same rule again (stored per challenge)."""
        raise NotImplementedError

    def describe(self, w: Wording) -> str:
        """What the rule asks, in one sentence, at this account size (rules/wording.py)."""
        raise NotImplementedError

    # What a rule answers; the defaults are "nothing to say".
    def floor(self, a: Account, r: Rules) -> Decimal | None:
        """The equity at (touch) or below (beyond) which this rule breaks now."""
        return None

    def breach(self, a: Account, r: Rules, equity: Decimal, now: datetime) -> Breach | None:
        return None

    def warning(self, a: Account, r: Rules, equity: Decimal) -> Warning | None:
        return None

    def warn_level(self, a: Account, r: Rules) -> Decimal | None:
        """The equity at or below which this rule's warning is due."""
        return None

    def blocks_pass(self, a: Account, r: Rules) -> bool:
        return False

    def objective(self, a: Account, r: Rules, now: datetime | None = None) -> Objective | None:
        return None

    def limit(self) -> Decimal | None:
        """Its money limit, for consumers that show one figure (risk's score, the created event)."""
        return None

    def level(self, a: Account, r: Rules) -> tuple[Decimal, Decimal] | None:
        """(floor, amount) of a loss limit now, for consumers that measure how much is used
        (risk's score and alerts) without a copy of the rules."""
        return None

    def pre_trade(self, held: Mapping[str, Decimal], symbol: str, signed: Decimal) -> str | None:
        """Why an order of `signed` lots in `symbol` may not fill, given the positions held."""
        return None

    def trading_closed(self, a: Account, r: Rules, now: datetime) -> str | None:
        """Why no order may fill at `now`, whatever it is; positions held then are closed."""
        return None

    def next_instant(self, a: Account, r: Rules, now: datetime) -> datetime | None:
        """The next moment after `now` at which this rule acts with no tick or fill to prompt it
        (a flat time, an end-of-day sample, a deadline): the clock judges the account then."""
        return None


def state_of(used: Decimal, warning_share: Decimal) -> str:
    return "BREACHED" if used >= 1 else "WARNING" if used >= warning_share else "OK"
