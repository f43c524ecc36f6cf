"""The console in a real headless Chromium against the real stack: a trader registers, starts
an FTMO-style challenge, buys, sees equity move live, is refused an oversized order, keeps
the stream through a gateway restart, and when an admin's scripted price breaks the daily
loss sees FAILED and the breach page that explains it."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal

import grpc
import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select
from tradesense.market.v1 import market_pb2, market_pb2_grpc

from devstack.browser import by_testid, chromium, console_errors, order, start_plan, submit, text_of, wait_for
from devstack.stack import Stack
from tests.e2e.test_challenges import set_price
from tests.helpers import admin_headers

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    with chromium() as driver:
        yield driver


def set_price_direct(stack: Stack, admin: dict[str, str], bid: str) -> None:
    """The scripted price set on market's gRPC API, not through the gateway."""
    ask = str(Decimal(bid) + 10)

    async def call() -> None:
        async with grpc.aio.insecure_channel(stack.grpc_addr("market")) as ch:
            stub = market_pb2_grpc.MarketServiceStub(ch)
            await stub.SetPrice(
                market_pb2.SetPriceRequest(symbol="BTCUSD", bid=bid, ask=ask), metadata=tuple(admin.items())
            )

    asyncio.run(call())


def test_a_trader_trades_live_and_reads_why_the_challenge_failed(stack: Stack, browser: webdriver.Chrome) -> None:
    api = httpx.Client(base_url=stack.gateway_url, timeout=20)
    admin = admin_headers(api, stack)

    def btc(bid: str) -> None:  # the scripted BTCUSD price, a $10 spread
        set_price(api, admin, "BTCUSD", bid, str(Decimal(bid) + 10))

    btc("50000.00")
    b = browser
    b.get(stack.gateway_url + "/")
    email = f"console-{uuid.uuid4().hex[:8]}@example.com"
    submit(b, "register-form", email=email, password="console-password-42")
    start_plan(b, "ftmo-phase1", "100000.00")
    wait_for(b, lambda d: "#/c/" in d.current_url and text_of(d, "status") == "ACTIVE")
    wait_for(b, lambda d: text_of(d, "bid") == "50000.00")  # the live price in the ticket
    assert text_of(b, "daily-left") == "5,000.00"

    order(b, "buy", "1000")  # far past the instrument's maximum
    wait_for(b, lambda d: "range" in text_of(d, "error"))

    order(b, "buy", "1")
    wait_for(b, lambda d: d.find_elements(By.CSS_SELECTOR, "[data-testid='close-BTCUSD']"))
    before = text_of(b, "equity")

    # The gateway restarts under the open streams; while it is down the price falls (set on
    # market directly) and the challenge's equity update is written. The streams reconnect with
    # their last event id and the page gets what it missed: nothing lost.
    stack.stop_service("gateway")
    wait_for(b, lambda d: d.find_element(By.ID, "live-status").get_attribute("data-state") == "down")
    set_price_direct(stack, admin, "49000.00")  # -1,000 on one lot
    time.sleep(6)  # equity updates are throttled to one per challenge per 5 s
    stack.start_gateway()
    wait_for(b, lambda d: d.find_element(By.ID, "live-status").get_attribute("data-state") == "live", 30)
    wait_for(b, lambda d: text_of(d, "equity") not in ("", before), 30)
    assert text_of(b, "equity").startswith("98,9")  # 100,000 - 5 commission - 10 spread - 1,000
    btc("44000.00")  # -6,000: past FTMO's $5,000 daily loss
    wait_for(b, lambda d: text_of(d, "status") == "FAILED", 30)
    wait_for(b, lambda d: by_testid(d, "breach-link").is_displayed())
    by_testid(b, "breach-link").click()
    wait_for(b, lambda d: "daily loss" in text_of(d, "breach-rule"))
    assert "44000" in text_of(b, "breach-prices") or "44,000" in text_of(b, "breach-prices")
    assert text_of(b, "breach-parameters")

    # An operator sees the failed challenge on the desk, sorted by risk score.
    b.find_element(By.ID, "logout").click()
    submit(b, "login-form", email=stack.admin_email, password=stack.admin_password)
    wait_for(b, lambda d: by_testid(d, "nav-admin").is_displayed())
    by_testid(b, "nav-admin").click()
    wait_for(b, lambda d: "FAILED" in text_of(d, "risk-table"))
    assert "Disable" in text_of(b, "users")
    # Finds the trader by email and makes them an operator.
    search = by_testid(b, "user-search")
    search.send_keys(email, Keys.ENTER)
    wait_for(b, lambda d: text_of(d, "users").count("@") == 1 and email in text_of(d, "users"))
    Select(by_testid(b, "role")).select_by_value("ADMIN")

    def role() -> str:
        users = api.get("/api/auth/users", params={"email_contains": email}, headers=admin).json()["users"]
        return str(users[0]["role"])

    wait_for(b, lambda d: role() == "ADMIN")
    # Sells a new plan on FTMO's pack from the desk; it is listed there and offered to traders.
    ftmo = next(p for p in api.get("/api/plans", headers=admin).json()["plans"] if p["id"] == "ftmo-phase1")
    Select(by_testid(b, "plan-form").find_element(By.NAME, "pack")).select_by_value(
        f"{ftmo['rule_pack']}@{ftmo['rule_pack_version']}"
    )
    plan_id = f"desk-{uuid.uuid4().hex[:6]}"
    submit(b, "plan-form", id=plan_id, name="Desk plan", sizes="100000.00, 200000.00")
    wait_for(b, lambda d: plan_id in text_of(d, "plans"))
    sold = next(p for p in api.get("/api/plans", headers=admin).json()["plans"] if p["id"] == plan_id)
    assert sold["account_sizes"] == ["100000.00", "200000.00"] and sold["rule_pack"] == ftmo["rule_pack"]
    assert console_errors(b) == []


def test_every_plan_card_reads_as_words_at_every_size(stack: Stack, browser: webdriver.Chrome) -> None:
    """Issue 28, item 4: the plans page shows each rule as the server words it. It used to guess
    from the raw parameters: "Maximum loss NaN", "contracts [object Object]"."""
    b = browser
    b.get(stack.gateway_url + "/")
    first = wait_for(
        b, lambda d: d.find_elements(By.CSS_SELECTOR, "[data-testid='register-form'], [data-testid^='plan-']")
    )
    if first[0].get_attribute("data-testid") == "register-form":  # signed out (run on its own)
        submit(b, "register-form", email=f"plans-{uuid.uuid4().hex[:8]}@example.com", password="console-password-42")
    plans = httpx.get(stack.gateway_url + "/api/plans", params={"page_size": 100}).json()["plans"]
    shown = 0
    for plan in [p for p in plans if p["phase"] == 1]:
        card = wait_for(b, lambda d, p=plan: by_testid(d, f"plan-{p['id']}"))
        select = Select(card.find_element(By.TAG_NAME, "select"))
        for size in plan["account_sizes"]:
            select.select_by_value(size)
            text = text_of(b, f"rules-{plan['id']}")
            assert text and "Maximum loss $" in text, (plan["id"], size, text)
            for bad in ("NaN", "undefined", "null", "[object", "max_balance_equity", "trailing_", "pct_of"):
                assert bad not in text, (plan["id"], size, text)
            assert re.search(r"\$\d{1,3}(,\d{3})*\.\d{2}", text), text  # money as money
            shown += 1
    assert shown >= 10
    assert console_errors(b) == []
