"""The console in a real headless Chromium against the real stack: a trader registers, starts
an FTMO-style challenge, buys, sees equity move live, is refused an oversized order, keeps
the stream through a gateway restart, and when an admin's scripted price breaks the daily
loss sees FAILED and the breach page that explains it."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal

import grpc
import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select
from tradesense.market.v1 import market_pb2, market_pb2_grpc

from devstack.browser import by_testid, chromium, console_errors, text_of, wait_for
from devstack.stack import Stack
from tests.helpers import admin_headers

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    with chromium() as driver:
        yield driver


def set_price(stack: Stack, admin: dict[str, str], bid: str) -> None:
    ask = f"{float(bid) + 10:.2f}"
    r = httpx.post(f"{stack.gateway_url}/api/market/admin/prices/BTCUSD", json={"bid": bid, "ask": ask}, headers=admin)
    assert r.status_code == 200, r.text


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
    admin = admin_headers(httpx.Client(base_url=stack.gateway_url, timeout=20), stack)
    set_price(stack, admin, "50000.00")
    b = browser
    b.get(stack.gateway_url + "/")
    form = wait_for(b, lambda d: by_testid(d, "register-form"))
    form.find_element(By.NAME, "email").send_keys(f"console-{uuid.uuid4().hex[:8]}@example.com")
    form.find_element(By.NAME, "password").send_keys("console-password-42")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    plan = wait_for(b, lambda d: by_testid(d, "plan-ftmo-phase1"))
    Select(plan.find_element(By.TAG_NAME, "select")).select_by_value("100000.00")
    by_testid(b, "start-ftmo-phase1").click()
    wait_for(b, lambda d: "#/c/" in d.current_url and text_of(d, "status") == "ACTIVE")
    wait_for(b, lambda d: text_of(d, "bid") == "50000.00")  # the live price in the ticket
    assert text_of(b, "daily-left") == "5,000.00"

    qty = by_testid(b, "quantity")
    qty.clear()
    qty.send_keys("1000")  # far past the instrument's maximum
    by_testid(b, "buy").click()
    wait_for(b, lambda d: "range" in text_of(d, "error"))

    qty.clear()
    qty.send_keys("1")
    by_testid(b, "buy").click()
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
    set_price(stack, admin, "44000.00")  # -6,000: past FTMO's $5,000 daily loss
    wait_for(b, lambda d: text_of(d, "status") == "FAILED", 30)
    wait_for(b, lambda d: by_testid(d, "breach-link").is_displayed())
    by_testid(b, "breach-link").click()
    wait_for(b, lambda d: "daily loss" in text_of(d, "breach-rule"))
    assert "44000" in text_of(b, "breach-prices") or "44,000" in text_of(b, "breach-prices")
    assert text_of(b, "breach-parameters")

    # An operator sees the failed challenge on the desk, sorted by risk score.
    b.find_element(By.ID, "logout").click()
    form = wait_for(b, lambda d: by_testid(d, "login-form"))
    form.find_element(By.NAME, "email").send_keys(stack.admin_email)
    form.find_element(By.NAME, "password").send_keys(stack.admin_password)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(b, lambda d: by_testid(d, "nav-admin").is_displayed())
    by_testid(b, "nav-admin").click()
    wait_for(b, lambda d: "FAILED" in text_of(d, "risk-table"))
    assert "Disable" in text_of(b, "users")
    assert console_errors(b) == []
