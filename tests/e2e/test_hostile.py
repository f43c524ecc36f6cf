"""Hostile input straight to the services and across tenants, derived from the API catalogue."""

from __future__ import annotations

import re
import uuid

import grpc
import httpx
import pytest

from devstack.stack import Stack
from services.common import catalog
from tests.e2e.test_challenges import new_challenge
from tests.helpers import bearer, register_and_login

pytestmark = pytest.mark.e2e

GARBAGE = [b"\xff\xff\xff\xff", b"\x0a\xff\xff\xff\xff\x0f", b"\x08" * 11]


@pytest.mark.parametrize("service", ["auth", "challenges", "market", "risk"])
def test_malformed_protobuf_is_invalid_argument_on_every_method(stack: Stack, service: str) -> None:
    methods = [m for m in catalog.methods() if m.service == service and not m.client_streaming]
    assert methods
    with grpc.insecure_channel(stack.grpc_addr(service)) as ch:
        for m in methods:
            for body in GARBAGE:
                if m.server_streaming:
                    call = ch.unary_stream(m.grpc_path, request_serializer=None, response_deserializer=None)
                    with pytest.raises(grpc.RpcError) as err:
                        next(iter(call(body, timeout=5)))
                else:
                    call = ch.unary_unary(m.grpc_path, request_serializer=None, response_deserializer=None)
                    with pytest.raises(grpc.RpcError) as err:
                        call(body, timeout=5)
                assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (m.grpc_path, body, err.value.details())


def test_another_traders_token_gets_not_found_on_every_resource_path(client: httpx.Client, stack: Stack) -> None:
    """Every authenticated REST path with an id in it, called with a second trader's token
    on the first trader's ids, answers 404 — never the resource, never 403."""
    alice, bob = register_and_login(client), register_and_login(client)
    ha, hb = bearer(alice["access_token"]), bearer(bob["access_token"])
    c = new_challenge(client, alice)
    ids = {"challenge_id": c["id"], "symbol": "BTCUSD"}
    # One trade and one alert id of Alice's, where they exist.
    trades = client.get("/api/trades", params={"challenge_id": c["id"]}, headers=ha).json()["trades"]
    ids["trade_id"] = trades[0]["id"] if trades else str(uuid.uuid4())
    ids["alert_id"] = str(uuid.uuid4())
    checked = 0
    for m in catalog.methods():
        if m.access != "AUTHENTICATED" or not m.http_path or "{" not in m.http_path or m.server_streaming:
            continue
        path = re.sub(r"\{(\w+)\}", lambda g: ids.get(g.group(1), str(uuid.uuid4())), m.http_path)
        if m.http_verb == "get":
            r = client.get(path, headers=hb)
        else:
            r = client.request(m.http_verb.upper(), path, json={}, headers=hb)
        assert r.status_code == 404, (m.grpc_path, path, r.status_code, r.text)
        checked += 1
    assert checked >= 6


@pytest.fixture(scope="module")
def client(stack: Stack) -> httpx.Client:
    return httpx.Client(base_url=stack.gateway_url, timeout=20)


def test_oversized_bodies_and_deep_json_are_refused_at_the_gateway(client: httpx.Client) -> None:
    big = b'{"email": "' + b"a" * (2 * 1024 * 1024) + b'@example.com", "password": "x"}'
    r = client.post("/api/auth/register", content=big, headers={"content-type": "application/json"})
    # Refused by Envoy (buffer filter, 1 MiB) before any service sees it.
    assert r.status_code == 413, r.text[:300]
    deep = b'{"email": ' + b"[" * 20000 + b"]" * 20000 + b"}"
    r = client.post("/api/auth/register", content=deep, headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500, r.status_code
    r = client.post("/api/auth/login", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
