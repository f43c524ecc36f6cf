"""Backtest a rule pack over recorded ticks and orders, with the service's own engine.

    python -m services.challenges.simulate --pack ftmo-2step --balance 100000 \\
        --ticks TICKS.csv --orders ORDERS.csv [--phase 1]
    python -m services.challenges.simulate --list-packs
    python -m services.challenges.simulate --pack topstep-combine --balance 50000 --ticks T.csv \\
        --orders O.csv --set consistency.pct=55 --set commission_per_lot=1.40

TICKS.csv: time,symbol,bid,ask      ORDERS.csv: time,symbol,side,quantity
(times RFC 3339 / ISO 8601 with offset; side BUY or SELL; quantity in lots).
Prints one JSON object per line: fills, warnings, breaches with their values, day
rolls, status changes, rejected orders, and finally the account's end state.
No database and no network: the instruments come from the market catalogue.
"""

from __future__ import annotations

import argparse
import csv
import heapq
import json
import sys
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from services.challenges.domain import engine
from services.challenges.domain.engine import Account
from services.challenges.domain.events import OrderRefused, StatusChanged
from services.challenges.domain.packs import BUILT_IN
from services.challenges.domain.rulepacks import RulePack
from services.challenges.domain.session import OrderRejected, Session, Spec
from services.market.domain.instruments import CATALOGUE


def specs() -> dict[str, Spec]:
    return {
        i.symbol: Spec(i.symbol, i.contract_size, i.quote_currency, i.min_quantity, i.max_quantity, i.quantity_step)
        for i in CATALOGUE
    }


def _time(raw: str) -> datetime:
    t = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    if t.tzinfo is None:
        raise ValueError(f"time {raw!r} has no UTC offset")
    return t


def _rows(path: Path, kind: int) -> Iterator[tuple[datetime, int, int, dict[str, str]]]:
    with path.open(newline="") as f:
        for n, row in enumerate(csv.DictReader(f)):
            # Ticks sort before orders at the same instant: an order fills at the price then.
            yield _time(row["time"]), kind, n, row


def run(pack: RulePack, phase: int, balance: Decimal, ticks: Path, orders: Path | None, out: TextIO) -> Account:
    rules = pack.rules_for(phase, balance)
    session = Session(rules, Account.new(balance), specs())
    emit = lambda e: out.write(json.dumps(e, default=str) + "\n")  # noqa: E731
    streams = [_rows(ticks, 0)] + ([_rows(orders, 1)] if orders else [])
    started = False
    for t, kind, _, row in heapq.merge(*streams, key=lambda x: (x[0], x[1], x[2])):
        if not started:
            engine.start(session.account, rules, t)
            emit(StatusChanged(t, engine.PENDING, engine.ACTIVE, "simulation start").payload())
            started = True
        if kind == 0:
            events = session.on_tick(row["symbol"].strip().upper(), Decimal(row["bid"]), Decimal(row["ask"]), t)
        else:
            try:
                events = session.place(
                    row["symbol"].strip().upper(), row["side"].strip().upper(), Decimal(row["quantity"]), t
                )
            except OrderRejected as exc:
                events = [OrderRefused(t, row["symbol"], exc.reason, exc.message)]
        for e in events:
            emit(e.payload())
    a = session.account
    final: dict[str, Any] = {
        "type": "final",
        "status": a.status,
        "balance": str(a.balance),
        "equity": str(a.equity),
        "trading_days": a.trading_days,
        "max_equity_ever": str(a.max_equity_ever),
        "positions": {s: str(p.quantity) for s, p in session.positions.items() if not p.is_flat},
        "blocking": engine.pass_check(a, rules, session.flat)[1] if a.status == engine.ACTIVE else [],
    }
    emit(final)
    return a


def _setting(raw: str) -> tuple[str, Any]:
    name, eq, value = raw.partition("=")
    if not eq or not name:
        raise ValueError(f"--set {raw!r}: expected NAME=VALUE")
    try:
        return name.strip(), json.loads(value)
    except json.JSONDecodeError:
        return name.strip(), value


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m services.challenges.simulate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--pack")
    ap.add_argument("--pack-file", type=Path, help="a pack definition as JSON instead of a built-in one")
    ap.add_argument("--phase", type=int, default=1)
    ap.add_argument("--balance", type=Decimal)
    ap.add_argument("--ticks", type=Path)
    ap.add_argument("--orders", type=Path)
    ap.add_argument("--list-packs", action="store_true")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a parameter for this run: commission_per_lot=1.50, max_loss.comparator=beyond, "
        "consistency.pct=55 (VALUE is JSON where it parses as JSON, else text)",
    )
    args = ap.parse_args(argv)
    packs = {p.id: p for p in BUILT_IN}
    if args.list_packs:
        for p in BUILT_IN:
            print(
                json.dumps(
                    {
                        "id": p.id,
                        "version": p.version,
                        "name": p.name,
                        "phases": len(p.phases),
                        "timezone": p.timezone,
                        "reset_time": p.reset_time,
                        "sizes": [str(size) for size in p.account_sizes(default=False)],  # [] = any
                        "rules": [r["kind"] for r in p.phases[0].get("rules", [])],
                    }
                )
            )
        return 0
    if args.pack_file:
        pack = RulePack.from_dict(json.loads(args.pack_file.read_text()))
    elif args.pack in packs:
        pack = packs[args.pack]
    else:
        ap.error(f"--pack must be one of {', '.join(packs)} (or use --pack-file)")
    if args.balance is None or args.ticks is None:
        ap.error("--balance and --ticks are required")
    try:
        if args.set:
            pack = pack.with_settings(dict(_setting(s) for s in args.set))
        run(pack, args.phase, args.balance, args.ticks, args.orders, sys.stdout)
    except (ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
