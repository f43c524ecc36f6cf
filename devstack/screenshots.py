"""`make screenshots`: the console's main pages in docs/screenshots/, from a stack of its own
driven in headless Chromium — the login, the plans, a trader's dashboard (desktop and phone
width), the breach page after an admin's scripted price breaks the daily loss, the operators'
desk."""

from __future__ import annotations

import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

import httpx
from selenium.webdriver.common.by import By

from devstack.browser import by_testid, chromium, order, start_plan, submit, text_of, wait_for
from devstack.stack import Stack, StackConfig
from services.market.domain.calibration import PROFILES

OUT = Path(__file__).resolve().parents[1] / "docs" / "screenshots"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as d, Stack(StackConfig.ephemeral(Path(d))) as stack:
        api = httpx.Client(base_url=stack.gateway_url, timeout=20)
        token = api.post("/api/auth/login", json={"email": stack.admin_email, "password": stack.admin_password})
        admin = {"authorization": f"Bearer {token.json()['access_token']}"}

        # Scripted prices at BTCUSD's reference level, so the chart continues its history.
        base = PROFILES["BTCUSD"].reference

        def price(bid: Decimal) -> None:
            body = {"bid": f"{bid:.2f}", "ask": f"{bid + 10:.2f}"}
            api.post("/api/market/admin/prices/BTCUSD", json=body, headers=admin).raise_for_status()

        price(base)
        with chromium() as b:
            b.get(stack.gateway_url + "/")
            wait_for(b, lambda d: by_testid(d, "register-form"))
            b.save_screenshot(str(OUT / "login.png"))
            email = f"ada-{uuid.uuid4().hex[:6]}@example.com"
            submit(b, "register-form", name="Ada Trader", email=email, password="screenshot-password-42")
            wait_for(b, lambda d: by_testid(d, "plan-ftmo-phase1"))
            b.save_screenshot(str(OUT / "plans.png"))
            start_plan(b, "ftmo-phase1", "100000.00")
            wait_for(b, lambda d: text_of(d, "bid") == f"{base:.2f}")
            order(b, "buy", "1")
            wait_for(b, lambda d: d.find_elements(By.CSS_SELECTOR, "[data-testid='close-BTCUSD']"))
            for move in (-200, -350, -300):  # a few live moves for the chart and equity
                price(base + move)
                time.sleep(1.5)
            b.set_window_size(1280, 2200)
            b.save_screenshot(str(OUT / "dashboard.png"))
            b.set_window_size(390, 2600)
            b.save_screenshot(str(OUT / "dashboard-phone.png"))
            b.set_window_size(1280, 900)
            price(base - 6000)  # past FTMO's $5,000 daily loss on one lot
            wait_for(b, lambda d: text_of(d, "status") == "FAILED", 30)
            wait_for(b, lambda d: by_testid(d, "breach-link").is_displayed())
            by_testid(b, "breach-link").click()
            wait_for(b, lambda d: by_testid(d, "breach-rule"))
            b.save_screenshot(str(OUT / "breach.png"))
        with chromium() as b:
            b.get(stack.gateway_url + "/")
            submit(b, "login-form", email=stack.admin_email, password=stack.admin_password)
            wait_for(b, lambda d: by_testid(d, "nav-admin").is_displayed())
            b.get(stack.gateway_url + "/#/admin")
            wait_for(b, lambda d: by_testid(d, "risk-table"))
            b.set_window_size(1280, 1400)
            b.save_screenshot(str(OUT / "admin.png"))
    print(f"screenshots in {OUT}")


if __name__ == "__main__":
    main()
