"""Rules describe themselves (issue 28, item 4): every built-in plan at every size reads as
words — money as money, no raw parameter names, nothing undefined. (The console used to guess
from the raw parameters and showed "Maximum loss NaN" and "contracts [object Object]".)"""

from __future__ import annotations

import re
from decimal import Decimal

from services.challenges.domain.packs import BUILT_IN
from services.challenges.domain.plan_rules import described
from services.challenges.domain.plans import PLANS

RAW = (
    "NaN",
    "None",
    "undefined",
    "null",
    "[object",
    "max_balance_equity",
    "trailing_",
    "any_fill",
    "pct_of",
    "per_symbol",
    "lock_level",
    "eod_at",
    "ends_at",
    "positive_days",
    "comparator",
    "beyond",
    "touch",
    "_",
)
MONEY = re.compile(r"\$\d{1,3}(,\d{3})*\.\d{2}")


def test_every_built_in_plan_reads_as_words_at_every_size() -> None:
    packs = {(p.id, p.version): p for p in BUILT_IN}
    for plan in PLANS:
        worded = described(
            packs[(plan.rule_pack, plan.rule_pack_version)], plan.phase, plan.currency, list(plan.account_sizes)
        )
        assert [size for size, _ in worded] == list(plan.account_sizes)
        for size, sentences in worded:
            assert sentences, plan.id
            for s in sentences:
                assert not any(bad in s.split("America/")[0].split("Europe/")[0] for bad in RAW), (plan.id, size, s)
            text = " ".join(sentences)
            assert "Maximum loss $" in text and MONEY.search(text), (plan.id, text)


def test_ftmos_worked_example_reads_as_ftmo_publishes_it() -> None:
    """FTMO's $100,000 account: a 5% ($5,000) daily loss from the day's starting balance, 10%
    ($10,000) maximum loss, and the limit may be reached but not passed
    (https://ftmo.com/en/trading-objectives/)."""
    packs = {(p.id, p.version): p for p in BUILT_IN}
    plan = next(p for p in PLANS if p.id == "ftmo-phase1")
    [(_, sentences)] = described(packs[(plan.rule_pack, plan.rule_pack_version)], 1, "USD", [Decimal("100000.00")])
    assert "Maximum loss $10,000.00: the account fails with equity below $90,000.00" in sentences
    assert any(s.startswith("Daily loss limit $5,000.00: the account fails with equity below") for s in sentences)
    assert any("00:00 Europe/Prague" in s for s in sentences)
    assert "Profit target $10,000.00: a closed balance of $110,000.00 with no position open" in sentences
