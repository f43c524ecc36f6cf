"""A challenge through the gateway as a browser would live it: from registration to FAILED
and to FUNDED, with prices moved on purpose by the admin-only scripted source."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from decimal import Decimal
from typing import Any

import grpc
import httpx
import pytest
from tradesense.auth.v1 import auth_pb2, auth_pb2_grpc
from tradesense.challenges.v1 import challenges_pb2, challenges_pb2_grpc

from devstack.stack import Stack
from tests.helpers import admin_headers, bearer, reason, register_and_login, sse_events

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def client(stack: Stack) -> httpx.Client:
    return httpx.Client(base_url=stack.gateway_url, timeout=20)


@pytest.fixture(scope="module")
def admin(client: httpx.Client, stack: Stack) -> dict[str, str]:
    return admin_headers(client, stack)


def set_price(client: httpx.Client, admin: dict[str, str], symbol: str, bid: str, ask: str) -> None:
    r = client.post(f"/api/market/admin/prices/{symbol}", json={"bid": bid, "ask": ask}, headers=admin)
    assert r.status_code == 200, r.text
    # Challenges fills on the quotes market streams to it (any under MAX_QUOTE_AGE is fresh): give
    # the new price the moment it takes to arrive, or an order right after fills at the old one.
    time.sleep(0.15)


def new_challenge(
    client: httpx.Client, trader: dict[str, Any], plan: str = "ftmo-phase1", size: str = "100000.00"
) -> dict[str, Any]:
    h = bearer(trader["access_token"])
    r = client.post(
        "/api/challenges", json={"plan_id": plan, "account_size": size, "idempotency_key": str(uuid.uuid4())}, headers=h
    )
    assert r.status_code == 200, r.text
    c = r.json()
    assert c["status"] == "PENDING"
    r = client.post(f"/api/challenges/{c['id']}/start", json={}, headers=h)
    assert r.status_code == 200 and r.json()["status"] == "ACTIVE", r.text
    return c


def test_from_registration_to_failed_by_a_price_move(client: httpx.Client, admin: dict[str, str]) -> None:
    trader = register_and_login(client)
    h = bearer(trader["access_token"])
    plans = {p["id"]: p for p in client.get("/api/plans").json()["plans"]}
    assert "100000.00" in plans["ftmo-phase1"]["account_sizes"]
    c = new_challenge(client, trader)
    set_price(client, admin, "BTCUSD", "50000.00", "50010.00")
    r = client.post(
        "/api/trades",
        json={
            "challenge_id": c["id"],
            "symbol": "BTCUSD",
            "side": "BUY",
            "quantity": "10",
            "idempotency_key": "open-1",
            "note": "breakout",
            "tags": ["btc", "momentum"],
        },
        headers=h,
    )
    assert r.status_code == 200, r.text
    trade = r.json()
    assert (trade["price"], trade["quantity"], trade["commission"]) == ("50010.00", "10.000", "50.00")
    assert trade["tags"] == ["btc", "momentum"]

    with client.stream(
        "GET", f"/api/challenges/{c['id']}/events/stream", headers=bearer(trader["access_token"])
    ) as resp:
        assert resp.status_code == 200
        events = sse_events(resp)
        seen = [next(events)["type"] for _ in range(3)]  # created, started, trade
        assert seen == ["status_changed", "status_changed", "trade_executed"]
        # The price falls: 10 BTC x $500 = $5,000 more loss; the 5% daily limit breaks with no trade.
        set_price(client, admin, "BTCUSD", "49490.00", "49500.00")
        kinds = []
        for e in events:
            kinds.append(e["type"])
            if e["type"] == "status_changed":
                break
    assert "breach" in kinds and "trade_executed" in kinds

    detail = client.get(f"/api/challenges/{c['id']}", headers=h).json()
    ch = detail["challenge"]
    assert ch["status"] == "FAILED" and ch["failure_reason"] == "DAILY_LOSS_LIMIT_BREACHED"
    assert ch["ended_at"] and Decimal(ch["balance"]) == Decimal("100000.00") - 10 * Decimal("520.00") - 100
    objectives = {o["rule"]: o for o in detail["objectives"]}
    assert objectives["daily_loss"]["state"] == "BREACHED"
    assert (detail["fills"], detail["total_trades"]) == (2, 1)  # the buy, and the breach's close
    assert client.get(f"/api/challenges/{c['id']}/positions", headers=h).json()["positions"] == []

    breaches = client.get(f"/api/challenges/{c['id']}/breaches", headers=h).json()["breaches"]
    assert len(breaches) == 1 and breaches[0]["rule"] == "daily_loss" and breaches[0]["hard"]
    observed = breaches[0]["observed"]
    assert observed["floor"] == "95000.00" and observed["prices"]["BTCUSD"] == "49490.00/49500.00"
    assert Decimal(observed["equity"]) <= Decimal("95000.00")

    # Nothing is accepted after a failure.
    r = client.post(
        "/api/trades", json={"challenge_id": c["id"], "symbol": "BTCUSD", "side": "BUY", "quantity": "1"}, headers=h
    )
    assert r.status_code == 400 and reason(r) == "CHALLENGE_NOT_ACTIVE"


FAST_PACK = {
    "id": "e2e-fast",
    "version": 1,
    "name": "One-day evaluation (tests)",
    "timezone": "Europe/Prague",
    "reset_time": "00:00",
    "defaults": {"commission_per_lot": "1.00"},
    "phases": [
        {
            "rules": [
                {"kind": "daily_loss", "params": {"pct": "5"}},
                {"kind": "max_loss", "params": {"pct": "10"}},
                {"kind": "profit_target", "params": {"pct": "1"}},
                {"kind": "min_trading_days", "params": {"days": 1}},
            ]
        }
    ],
}


def test_admin_adds_a_pack_and_a_trader_is_funded(client: httpx.Client, admin: dict[str, str]) -> None:
    trader = register_and_login(client)
    h = bearer(trader["access_token"])
    r = client.post("/api/rule-packs", json={"definition": FAST_PACK}, headers=h)
    assert r.status_code == 403  # traders cannot
    r = client.post("/api/rule-packs", json={"definition": FAST_PACK}, headers=admin)
    assert r.status_code in (200, 409), r.text
    r = client.post("/api/rule-packs", json={"definition": {"id": 1}}, headers=admin)
    assert r.status_code == 400
    # A misspelt parameter is refused at its field, never judged by a default.
    bad = json.loads(json.dumps(FAST_PACK))
    bad["phases"][0]["rules"][1]["params"] = {"pct": "10", "moed": "static"}
    r = client.post("/api/rule-packs", json={"definition": bad}, headers=admin)
    assert r.status_code == 400, r.text
    fields = [v["field"] for d in r.json()["details"] for v in d.get("field_violations", d.get("fieldViolations", []))]
    assert fields == ["definition.phases[0].rules[1].params.moed"], r.text
    r = client.post(
        "/api/plans",
        json={
            "id": "e2e-fast",
            "name": "Fast",
            "rule_pack": "e2e-fast",
            "rule_pack_version": 1,
            "phase": 1,
            "account_sizes": ["10000.00"],
        },
        headers=admin,
    )
    assert r.status_code in (200, 409), r.text

    c = new_challenge(client, trader, plan="e2e-fast", size="10000.00")
    set_price(client, admin, "BTCUSD", "60000.00", "60001.00")
    r = client.post(
        "/api/trades", json={"challenge_id": c["id"], "symbol": "BTCUSD", "side": "BUY", "quantity": "1"}, headers=h
    )
    assert r.status_code == 200, r.text
    set_price(client, admin, "BTCUSD", "60200.00", "60201.00")
    r = client.post(f"/api/challenges/{c['id']}/positions/BTCUSD/close", json={"idempotency_key": "close-1"}, headers=h)
    assert r.status_code == 200 and r.json()["realized_pnl"] == "199.00", r.text
    detail = client.get(f"/api/challenges/{c['id']}", headers=h).json()
    assert detail["challenge"]["status"] == "FUNDED"
    assert detail["win_rate_ratio"] == 1.0 and detail["avg_trade_pnl"] == "199.00"
    assert {o["rule"]: o["state"] for o in detail["objectives"]}["profit_target"] == "MET"


def test_phase_one_pass_opens_phase_two(client: httpx.Client, admin: dict[str, str], stack: Stack) -> None:
    pack = {
        **FAST_PACK,
        "id": "e2e-2phase",
        "phases": [
            {**FAST_PACK["phases"][0], "next_plan": "e2e-2phase-p2"},  # type: ignore[dict-item]
            FAST_PACK["phases"][0],  # type: ignore[index]
        ],
    }
    r = client.post("/api/rule-packs", json={"definition": pack}, headers=admin)
    assert r.status_code in (200, 409), r.text
    for phase in (1, 2):
        client.post(
            "/api/plans",
            json={
                "id": f"e2e-2phase-p{phase}",
                "rule_pack": "e2e-2phase",
                "rule_pack_version": 1,
                "phase": phase,
                "account_sizes": ["10000.00"],
            },
            headers=admin,
        )
    trader = register_and_login(client)
    h = bearer(trader["access_token"])
    c = new_challenge(client, trader, plan="e2e-2phase-p1", size="10000.00")
    set_price(client, admin, "ETHUSD", "3000.00", "3000.10")
    client.post(
        "/api/trades", json={"challenge_id": c["id"], "symbol": "ETHUSD", "side": "BUY", "quantity": "10"}, headers=h
    )
    set_price(client, admin, "ETHUSD", "3020.00", "3020.10")
    client.post(f"/api/challenges/{c['id']}/positions/ETHUSD/close", json={}, headers=h)
    assert client.get(f"/api/challenges/{c['id']}", headers=h).json()["challenge"]["status"] == "PASSED"
    mine = client.get("/api/challenges", headers=h).json()["challenges"]
    phase2 = [x for x in mine if x["plan_id"] == "e2e-2phase-p2"]
    assert len(phase2) == 1 and phase2[0]["status"] == "PENDING" and phase2[0]["phase"] == 2


def test_bad_orders_are_clear_errors(client: httpx.Client, admin: dict[str, str]) -> None:
    trader = register_and_login(client)
    h = bearer(trader["access_token"])
    r = client.post("/api/challenges", json={"plan_id": "ftmo-phase1", "account_size": "100000.00"}, headers=h)
    pending = r.json()
    order = {"challenge_id": pending["id"], "symbol": "BTCUSD", "side": "BUY", "quantity": "1"}
    r = client.post("/api/trades", json=order, headers=h)
    assert r.status_code == 400 and reason(r) == "CHALLENGE_NOT_ACTIVE"
    c = new_challenge(client, trader)
    cases = [
        ({"symbol": "NOPE"}, 404, "UNKNOWN_SYMBOL"),
        ({"quantity": "1000"}, 400, "QUANTITY_OUT_OF_RANGE"),
        ({"quantity": "0.0001"}, 400, "QUANTITY_OUT_OF_RANGE"),
        ({"quantity": "-1"}, 400, "INVALID_ARGUMENT"),
        ({"quantity": "abc"}, 400, "INVALID_ARGUMENT"),
        ({"side": "SIDE_UNSPECIFIED"}, 400, "INVALID_ARGUMENT"),
        ({"challenge_id": "not-a-uuid"}, 400, "INVALID_ARGUMENT"),
        ({"challenge_id": str(uuid.uuid4())}, 404, "NOT_FOUND"),
    ]
    for change, status, why in cases:
        r = client.post("/api/trades", json={**order, "challenge_id": c["id"], **change}, headers=h)
        assert (r.status_code, reason(r)) == (status, why), (change, r.text)
    r = client.post("/api/challenges", json={"plan_id": "ftmo-phase1", "account_size": "123.00"}, headers=h)
    assert r.status_code == 400
    r = client.post("/api/challenges", json={"plan_id": "nope", "account_size": "100000.00"}, headers=h)
    assert r.status_code == 404


def test_closed_markets_refuse_fills(client: httpx.Client) -> None:
    trader = register_and_login(client)
    h = bearer(trader["access_token"])
    c = new_challenge(client, trader)
    status = client.get("/api/market/status", params={"symbols": "AAPL"}).json()["statuses"][0]["status"]
    r = client.post(
        "/api/trades", json={"challenge_id": c["id"], "symbol": "AAPL", "side": "BUY", "quantity": "1"}, headers=h
    )
    if status["is_open"]:
        assert r.status_code == 200, r.text
    else:
        assert r.status_code == 400 and reason(r) == "MARKET_CLOSED"


def test_another_trader_sees_nothing(client: httpx.Client, admin: dict[str, str]) -> None:
    alice, bob = register_and_login(client), register_and_login(client)
    c = new_challenge(client, alice)
    hb = bearer(bob["access_token"])
    for path in (
        f"/api/challenges/{c['id']}",
        f"/api/challenges/{c['id']}/positions",
        f"/api/challenges/{c['id']}/breaches",
    ):
        assert client.get(path, headers=hb).status_code == 404
    assert client.get("/api/trades", params={"challenge_id": c["id"]}, headers=hb).status_code == 404
    r = client.post(
        "/api/trades", json={"challenge_id": c["id"], "symbol": "BTCUSD", "side": "BUY", "quantity": "1"}, headers=hb
    )
    assert r.status_code == 404
    assert client.post(f"/api/challenges/{c['id']}/start", json={}, headers=hb).status_code == 404
    assert all(x["id"] != c["id"] for x in client.get("/api/challenges", headers=hb).json()["challenges"])
    with client.stream("GET", f"/api/challenges/{c['id']}/events/stream", headers=hb) as r:
        assert r.status_code == 404


def test_idempotent_orders_and_trade_listing(client: httpx.Client, admin: dict[str, str]) -> None:
    trader = register_and_login(client)
    h = bearer(trader["access_token"])
    c = new_challenge(client, trader)
    set_price(client, admin, "BTCUSD", "50000.00", "50010.00")
    order = {"challenge_id": c["id"], "symbol": "BTCUSD", "side": "BUY", "quantity": "0.5", "idempotency_key": "k1"}
    first, again = client.post("/api/trades", json=order, headers=h), client.post("/api/trades", json=order, headers=h)
    assert first.status_code == again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    client.post("/api/trades", json={**order, "side": "SELL", "quantity": "0.2", "idempotency_key": "k2"}, headers=h)
    trades = client.get("/api/trades", params={"challenge_id": c["id"], "order": "ASC"}, headers=h).json()["trades"]
    assert [t["side"] for t in trades] == ["BUY", "SELL"]
    sells = client.get("/api/trades", params={"challenge_id": c["id"], "side": "SELL"}, headers=h).json()["trades"]
    assert len(sells) == 1
    page = client.get("/api/trades", params={"challenge_id": c["id"], "page_size": 1}, headers=h).json()
    assert len(page["trades"]) == 1 and page["next_page_token"]
    positions = client.get(f"/api/challenges/{c['id']}/positions", headers=h).json()["positions"]
    assert positions[0]["quantity"] == "0.300" and positions[0]["symbol"] == "BTCUSD"
    r = client.post(
        f"/api/trades/{trades[0]['id']}/journal", json={"note": "held too long", "tags": ["lesson"]}, headers=h
    )
    assert r.status_code == 200 and r.json()["note"] == "held too long"
    journal = f"/api/trades/{trades[0]['id']}/journal"
    r = client.post(journal, json={"tags": ["lesson", "fomo"]}, headers=h)  # tags only: the note stays
    assert (r.json()["note"], r.json()["tags"]) == ("held too long", ["lesson", "fomo"])
    r = client.post(journal, json={"note": "sized right"}, headers=h)  # note only: the tags stay
    assert (r.json()["note"], r.json()["tags"]) == ("sized right", ["lesson", "fomo"])
    r = client.post(journal, json={"tags": [], "update_mask": "tags"}, headers=h)  # named: cleared
    assert (r.json()["note"], r.json()["tags"]) == ("sized right", [])
    wrong_side = {**order, "idempotency_key": "k3", "stop_loss": "50100.00"}  # above the bid of a long
    r = client.post("/api/trades", json=wrong_side, headers=h)
    assert (r.status_code, reason(r)) == (400, "STOP_LOSS_WRONG_SIDE"), r.text


async def test_concurrent_orders_never_corrupt_the_balance(
    stack: Stack, client: httpx.Client, admin: dict[str, str]
) -> None:
    trader = register_and_login(client)
    c = new_challenge(client, trader)
    set_price(client, admin, "BTCUSD", "50000.00", "50000.00")  # no spread: P&L is commission only
    h = bearer(trader["access_token"])
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as ac:
        orders = [
            ac.post(
                "/api/trades",
                headers=h,
                json={
                    "challenge_id": c["id"],
                    "symbol": "BTCUSD",
                    "side": "BUY" if i % 2 else "SELL",
                    "quantity": "0.1",
                    "idempotency_key": f"c{i}",
                },
            )
            for i in range(30)
        ]
        results = await asyncio.gather(*orders)
    assert [r.status_code for r in results] == [200] * 30
    detail = client.get(f"/api/challenges/{c['id']}", headers=h).json()
    # 30 fills of 0.1 lot at $5/lot commission, no price move: exactly $15 gone.
    assert detail["challenge"]["balance"] == "99985.00"
    # 30 fills; the closes realised no P&L (no price move), so none counts as a closing trade,
    # as risk's metrics count them (a fill that realised P&L).
    assert detail["fills"] == 30 and detail["total_trades"] == 0
    assert client.get(f"/api/challenges/{c['id']}/positions", headers=h).json()["positions"] == []


def test_a_list_of_named_challenges_holds_only_the_callers_own(client: httpx.Client) -> None:
    """`challenge_ids` narrows the list to those challenges; another trader's stay out of it, and
    more ids than a page are a clear 400."""
    trader, other = register_and_login(client), register_and_login(client)
    mine = [new_challenge(client, trader) for _ in range(2)]
    theirs = new_challenge(client, other)
    h = bearer(trader["access_token"])
    r = client.get("/api/challenges", params={"challenge_ids": [mine[1]["id"], theirs["id"]]}, headers=h)
    assert r.status_code == 200 and [c["id"] for c in r.json()["challenges"]] == [mine[1]["id"]]
    r = client.get("/api/challenges", params={"challenge_ids": [str(uuid.uuid4()) for _ in range(101)]}, headers=h)
    assert r.status_code == 400 and "challenge_ids" in r.text
    r = client.get("/api/challenges", params={"challenge_ids": ["not-an-id"]}, headers=h)
    assert r.status_code == 400


def test_internal_event_feed_resumes_from_a_cursor(stack: Stack, client: httpx.Client) -> None:
    with (
        grpc.insecure_channel(stack.grpc_addr("auth")) as a,
        grpc.insecure_channel(stack.grpc_addr("challenges")) as ch,
    ):
        token = (
            auth_pb2_grpc.AuthServiceStub(a)
            .IssueServiceToken(auth_pb2.IssueServiceTokenRequest(client_id="risk", client_secret=stack.secrets["risk"]))
            .access_token
        )
        md = (("authorization", f"Bearer {token}"),)
        stub = challenges_pb2_grpc.ChallengesServiceStub(ch)
        first = list(
            _take(stub.WatchEvents(challenges_pb2.WatchEventsRequest(after_sequence=0), metadata=md, timeout=10), 5)
        )
        assert [e.sequence for e in first] == sorted(e.sequence for e in first)
        resumed = next(
            iter(
                stub.WatchEvents(
                    challenges_pb2.WatchEventsRequest(after_sequence=first[2].sequence), metadata=md, timeout=10
                )
            )
        )
        assert resumed.sequence == first[3].sequence
        # The batched feed (risk's) carries the same events from the same cursor, in runs.
        run = next(
            iter(
                stub.WatchEventBatches(
                    challenges_pb2.WatchEventsRequest(after_sequence=first[0].sequence), metadata=md, timeout=10
                )
            )
        )
        assert [e.sequence for e in run.events[:4]] == [e.sequence for e in first[1:]]
        assert run.events[0] == first[1]
        trader = register_and_login(client)
        with pytest.raises(grpc.RpcError) as err:
            next(
                iter(
                    stub.WatchEvents(
                        challenges_pb2.WatchEventsRequest(),
                        metadata=(("authorization", f"Bearer {trader['access_token']}"),),
                        timeout=5,
                    )
                )
            )
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


def _take(it: Any, n: int) -> Any:
    for i, x in enumerate(it):
        yield x
        if i + 1 == n:
            return


def test_creating_a_challenge_is_idempotent_even_for_racing_retries(client: httpx.Client, stack: Stack) -> None:
    """Eight simultaneous creates with one key make one challenge (the unique key decides
    the race); the same key for a different request is a clear 409."""
    t = register_and_login(client)
    h = bearer(t["access_token"])
    body = {"plan_id": "ftmo-phase1", "account_size": "100000.00", "idempotency_key": "buy-1"}

    async def create_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=20) as ac:
            return await asyncio.gather(*(ac.post("/api/challenges", json=body, headers=h) for _ in range(8)))

    answers = asyncio.run(create_all())
    assert all(r.status_code == 200 for r in answers), [r.text for r in answers]
    assert len({r.json()["id"] for r in answers}) == 1
    mine = client.get("/api/challenges", headers=h).json()["challenges"]
    assert [c["id"] for c in mine] == [answers[0].json()["id"]]
    other = client.post("/api/challenges", json={**body, "account_size": "200000.00"}, headers=h)
    assert other.status_code == 409 and "IDEMPOTENCY_KEY_REUSED" in other.text, other.text
