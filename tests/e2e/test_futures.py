"""A futures account under the Topstep Combine through the gateway (issue 17): CME contracts in
market's catalogue, whole contracts and the position cap refused before a fill, the trailing
Maximum Loss Limit broken by a price move with its evidence in the breach list, and a flat time
acted on by the service's clock."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
import pytest

from devstack.stack import Stack
from tests.e2e.test_challenges import new_challenge, set_price
from tests.helpers import admin_headers, bearer, eventually, reason, register_and_login

pytestmark = pytest.mark.e2e


def _publish(c: httpx.Client, admin: dict[str, str], pack: dict, size: str) -> str:
    """Publish `pack` under a fresh id with a plan of the same id; the plan's id."""
    pack = {**pack, "id": f"e2e-{uuid.uuid4().hex[:8]}", "version": 1}
    r = c.post("/api/rule-packs", json={"definition": pack}, headers=admin)
    assert r.status_code == 200, r.text
    plan = {"id": pack["id"], "rule_pack": pack["id"], "rule_pack_version": 1, "phase": 1, "account_sizes": [size]}
    r = c.post("/api/plans", json=plan, headers=admin)
    assert r.status_code == 200, r.text
    return pack["id"]


def test_an_es_position_under_the_topstep_combine_breaks_the_mll_on_a_price_move(stack: Stack) -> None:
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as c:
        es = c.get("/api/market/symbols/ES").json()["instrument"]
        assert (es["asset_class"], es["contract_size"], es["tick_size"], es["quantity_step"]) == (
            "FUTURE",
            "50",
            "0.25",
            "1",
        )
        admin = admin_headers(c, stack)
        set_price(c, admin, "ES", "5200.00", "5200.25")
        me = register_and_login(c)
        h = bearer(me["access_token"])
        # The Combine as published, but for its 15:10–17:00 CT flat window (which the next test
        # covers at a moment of its choosing), so that this one passes at any hour CI runs.
        packs = {p["id"]: p["definition"] for p in c.get("/api/rule-packs").json()["rule_packs"]}
        combine = packs["topstep-combine"]
        [rules] = [phase["rules"] for phase in combine["phases"]]
        assert {"kind": "flat_by", "params": {"at": "15:10"}} in rules
        anytime = {**combine, "phases": [{"rules": [r for r in rules if r["kind"] != "flat_by"]}]}
        cid = new_challenge(c, me, plan=_publish(c, admin, anytime, "50000.00"), size="50000.00")["id"]

        def order(quantity: str) -> httpx.Response:
            body = {"challenge_id": cid, "symbol": "ES", "side": "BUY", "quantity": quantity}
            return c.post("/api/trades", json=body, headers=h)

        # The countdown the console shows: the next 17:00 Chicago (DST included), within a day.
        detail = c.get(f"/api/challenges/{cid}", headers=h).json()
        reset = datetime.fromisoformat(detail["next_reset_at"].replace("Z", "+00:00"))
        assert reset.astimezone(ZoneInfo("America/Chicago")).time() == time(17, 0)
        assert timedelta(0) < reset - datetime.now(UTC) <= timedelta(days=1)
        assert "deadline_at" not in detail  # the Combine has no time limit

        half = order("1.5")
        assert half.status_code == 400 and reason(half) == "QUANTITY_STEP", half.text  # whole contracts
        over = order("6")
        assert over.status_code == 400 and reason(over) == "POSITION_LIMIT", over.text  # 5 minis on 50K
        assert "at most 5" in over.json()["message"]
        filled = order("2")
        assert filled.status_code == 200 and filled.json()["price"] == "5200.25", filled.text

        # 2 × $50 × (5180.00 − 5200.25) = −$2,025, and $5 of commission: equity $47,970, under the
        # $48,000 floor (help.topstep.com: touching or falling below it ends the Combine).
        set_price(c, admin, "ES", "5180.00", "5180.25")

        def failed() -> dict | None:
            ch = c.get(f"/api/challenges/{cid}", headers=h).json()["challenge"]
            return ch if ch["status"] == "FAILED" else None

        ch = eventually(failed, 15, 0.1)
        assert ch["failure_reason"] == "MAX_LOSS_LIMIT_BREACHED"
        [breach] = c.get(f"/api/challenges/{cid}/breaches", headers=h).json()["breaches"]
        params, observed = breach["parameters"], breach["observed"]
        assert breach["rule"] == "max_loss" and breach["hard"] is True
        assert (params["mode"], params["amount"], params["comparator"]) == ("trailing_eod", "2000", "touch")
        assert Decimal(observed["floor"]) == Decimal("48000.00")
        assert Decimal(observed["equity"]) <= Decimal(observed["floor"])
        assert observed["prices"]["ES"] == "5180.00/5180.25"
        positions = c.get(f"/api/challenges/{cid}/positions", headers=h).json()["positions"]
        assert positions == []  # flattened by the breach


def test_the_clock_flattens_a_position_at_the_flat_time_and_orders_wait_for_the_next_session(
    stack: Stack,
) -> None:
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as c:
        admin = admin_headers(c, stack)
        set_price(c, admin, "MES", "5200.00", "5200.25")
        now = datetime.now(UTC)
        flat_at, reset = (now + timedelta(seconds=6)).time(), (now + timedelta(hours=6)).time()
        pack = {
            "name": "Flat in six seconds (tests)",
            "timezone": "UTC",
            "reset_time": reset.replace(microsecond=0).isoformat(),
            "phases": [
                {
                    "rules": [
                        {"kind": "max_loss", "params": {"amount": "2000", "mode": "static"}},
                        {"kind": "flat_by", "params": {"at": flat_at.replace(microsecond=0).isoformat()}},
                    ]
                }
            ],
        }
        me = register_and_login(c)
        h = bearer(me["access_token"])
        cid = new_challenge(c, me, plan=_publish(c, admin, pack, "50000.00"), size="50000.00")["id"]
        body = {"challenge_id": cid, "symbol": "MES", "side": "BUY", "quantity": "3"}
        r = c.post("/api/trades", json=body, headers=h)
        assert r.status_code == 200, r.text

        # No tick comes: the service's own clock closes the position at the flat time.
        eventually(lambda: c.get(f"/api/challenges/{cid}/positions", headers=h).json()["positions"] == [], 15, 0.2)
        trades = c.get("/api/trades", params={"challenge_id": cid}, headers=h).json()["trades"]
        assert sorted((t["side"], t["quantity"]) for t in trades) == [("BUY", "3"), ("SELL", "3")]
        refused = c.post("/api/trades", json=body, headers=h)
        assert refused.status_code == 400 and reason(refused) == "FLAT_BY", refused.text
        assert "until the next session" in refused.json()["message"]
        assert c.get(f"/api/challenges/{cid}", headers=h).json()["challenge"]["status"] == "ACTIVE"


def test_an_apex_evaluation_shows_its_deadline(stack: Stack) -> None:
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as c:
        me = register_and_login(c)
        h = bearer(me["access_token"])
        cid = new_challenge(c, me, plan="apex-eval", size="50000.00")["id"]
        detail = c.get(f"/api/challenges/{cid}", headers=h).json()
        ny = ZoneInfo("America/New_York")
        started = datetime.fromisoformat(detail["challenge"]["started_at"].replace("Z", "+00:00")).astimezone(ny)
        deadline = datetime.fromisoformat(detail["deadline_at"].replace("Z", "+00:00")).astimezone(ny)
        # 30 calendar days, expiring 18:00 New York on day 30 (day 1 is the start's own date).
        assert (deadline.date() - started.date()).days == 29 and deadline.time() == time(18, 0)
        rules = {o["rule"] for o in detail["objectives"]}
        assert {"max_loss", "profit_target", "time_limit"} <= rules
