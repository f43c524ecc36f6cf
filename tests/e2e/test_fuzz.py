"""Hostile strings and numbers in every field of every RPC, while another trader trades
(issue 16, item 3).

Every request type of the API (from the catalogue) is filled by hypothesis with values a
hostile client would send — NUL and other control characters, bidi and invisible marks,
huge and exotic numbers, over-long text — and sent straight to its service over gRPC (as a
trader, or as the administrator for admin and internal RPCs), and the REST routes with a
body get the same through the gateway. Nothing may answer as a server failure (INTERNAL,
UNKNOWN, DATA_LOSS, UNAVAILABLE; HTTP ≥ 500), and a second trader placing orders all the
while gets every order filled: before the input guard and the batch's isolation, NUL in a
note failed 30-38 of another trader's 48 orders.
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import symbol_database
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tradesense.common.v1 import options_pb2

from devstack.stack import Stack
from services.common import catalog
from tests.e2e.test_challenges import new_challenge, set_price
from tests.helpers import admin_headers, bearer, register_and_login

pytestmark = pytest.mark.e2e

SERVER_FAILURES = {
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.DATA_LOSS,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.UNIMPLEMENTED,
}

HOSTILE = st.sampled_from(
    [
        "\x00",
        "a\x00b",
        "\x1b[31m",
        "\x7f",
        "\u0085",
        "\u202e",
        "\u2066x\u2069",
        "\u200b",
        "\ufeff",
        "1e999999",
        "-1e-999999",
        "NaN",
        "Infinity",
        "1_0",
        " 1 ",
        "\u0661\u0662",
        "9" * 5000,
        "0." + "1" * 400,
        "-0",
        "x" * 70_000,
        '{"n": -1}',
        "eyJuIjotMX0",
        "../../etc/passwd",
        "' OR 1=1 --",
        "%00",
        "\ud7ff",
    ]
)
# Never a real symbol: a fuzzed admin SetPrice must not move the market the second trader trades in.
STRINGS = st.one_of(HOSTILE, st.text(max_size=40).filter(lambda s: s.strip().upper() != "BTCUSD"))
INTS = st.one_of(st.integers(-(2**31), 2**31 - 1), st.sampled_from([-1, 0, 2**31 - 1, -(2**31)]))


def _cls(descriptor: Descriptor) -> type[Message]:
    return symbol_database.Default().GetSymbol(descriptor.full_name)  # type: ignore[no-any-return]


PLAIN = st.sampled_from(["0.01", "1", "0.5", "100000", "50000.5"])


def _strings(f: FieldDescriptor, own: dict[str, str]) -> st.SearchStrategy[str]:
    """Hostile text for any field; also, now and then, a value that gets the request past
    the first checks (the fuzzer's own challenge, a tradable symbol, a plain decimal), so
    hostile values in the other fields reach the order batch and the database."""
    if f.name == "challenge_id":
        return st.one_of(STRINGS, st.just(own["challenge_id"]))
    if f.name == "symbol" and f.containing_type.full_name != "tradesense.market.v1.SetPriceRequest":
        return st.one_of(STRINGS, st.just("BTCUSD"))
    if f.GetOptions().HasExtension(options_pb2.decimal):
        return st.one_of(STRINGS, PLAIN)
    return STRINGS


def _fill(data: st.DataObject, msg: Message, own: dict[str, str], depth: int = 0) -> None:
    for f in msg.DESCRIPTOR.fields:
        if f.type == FieldDescriptor.TYPE_STRING:
            text = _strings(f, own)
            values = data.draw(st.lists(text, max_size=3)) if f.is_repeated else [data.draw(text)]
        elif f.type in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_ENUM, FieldDescriptor.TYPE_SINT32):
            values = [data.draw(INTS)]
        elif f.type in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64):
            values = [data.draw(st.integers(-(2**63), 2**63 - 1))]
        elif f.type == FieldDescriptor.TYPE_BOOL:
            values = [data.draw(st.booleans())]
        elif f.type == FieldDescriptor.TYPE_MESSAGE and depth < 2 and not f.message_type.GetOptions().map_entry:
            if f.message_type.full_name == "google.protobuf.Timestamp":
                sub = getattr(msg, f.name) if not f.is_repeated else getattr(msg, f.name).add()
                sub.seconds = data.draw(st.integers(-62135596800, 253402300799))
            elif not f.is_repeated:
                _fill(data, getattr(msg, f.name), own, depth + 1)
            continue
        else:
            continue
        if f.is_repeated:
            getattr(msg, f.name).extend(values)
        elif f.containing_oneof is None or data.draw(st.booleans()):
            setattr(msg, f.name, values[0])


class Trader(threading.Thread):
    """The second trader placing small orders on one of their challenges until told to stop."""

    def __init__(self, stack: Stack, me: dict[str, Any]) -> None:
        super().__init__(daemon=True)
        self.client = httpx.Client(base_url=stack.gateway_url, timeout=30)
        self.me = me
        self.challenge = new_challenge(self.client, self.me)
        self.stop = threading.Event()
        self.answers: list[tuple[int, str]] = []

    def run(self) -> None:
        h = bearer(self.me["access_token"])
        side = "BUY"
        while not self.stop.is_set():
            r = self.client.post(
                "/api/trades",
                json={
                    "challenge_id": self.challenge["id"],
                    "symbol": "BTCUSD",
                    "side": side,
                    "quantity": "0.01",
                    "note": "steady",
                    "idempotency_key": str(uuid.uuid4()),
                },
                headers=h,
            )
            self.answers.append((r.status_code, r.text[:200]))
            side = "SELL" if side == "BUY" else "BUY"


@pytest.fixture(scope="module")
def setting(stack: Stack) -> Any:
    client = httpx.Client(base_url=stack.gateway_url, timeout=30)
    admin = admin_headers(client, stack)
    set_price(client, admin, "BTCUSD", "50000", "50001")
    fuzzer = register_and_login(client)
    own = {"challenge_id": new_challenge(client, fuzzer)["id"]}
    second = register_and_login(client)
    traders = [Trader(stack, second) for _ in range(4)]  # four challenges, orders in flight together
    for trader in traders:
        trader.start()
    yield {
        "client": client,
        "tokens": {"trader": fuzzer["access_token"], "admin": admin["authorization"].split(" ", 1)[1]},
        "own": own,
        "fuzzer": fuzzer,
    }
    # The fuzzer's token held to the end, so every request was judged past authentication.
    assert client.get("/api/auth/me", headers=bearer(fuzzer["access_token"])).status_code == 200
    for trader in traders:
        trader.stop.set()
    answers = []
    for trader in traders:
        trader.join(30)
        answers += trader.answers
    assert len(answers) >= 40, "the second trader barely traded"
    assert {code for code, _ in answers} == {200}, [a for a in answers if a[0] != 200][:5]


UNARY = [m for m in catalog.methods() if not m.client_streaming and m.service != "common"]


@pytest.mark.parametrize("method", UNARY, ids=lambda m: m.grpc_path.rsplit(".", 1)[-1])
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(data=st.data())
def test_no_field_value_makes_any_rpc_fail_as_a_server_error(
    stack: Stack, setting: dict[str, Any], method: catalog.Method, data: st.DataObject
) -> None:
    request = _cls(method.descriptor.input_type)()
    _fill(data, request, setting["own"])
    role = "admin" if method.access in ("ADMIN", "INTERNAL") else "trader"
    # Public RPCs go without a token: a Logout carrying the fuzzer's token would end its
    # session, and every later request would stop at TOKEN_REVOKED instead of going deep.
    token = setting["tokens"][role]
    metadata = () if method.access in ("PUBLIC", "SERVICE_LOGIN") else (("authorization", f"Bearer {token}"),)
    cls = _cls(method.descriptor.output_type)
    with grpc.insecure_channel(stack.grpc_addr(method.service)) as ch:
        try:
            if method.server_streaming:
                call = ch.unary_stream(method.grpc_path, request.SerializeToString, cls.FromString)
                next(iter(call(request, timeout=0.5, metadata=metadata)), None)
            else:
                call = ch.unary_unary(method.grpc_path, request.SerializeToString, cls.FromString)
                call(request, timeout=10, metadata=metadata)
        except grpc.RpcError as err:
            code = err.code()  # type: ignore[attr-defined]
            if method.server_streaming and code == grpc.StatusCode.DEADLINE_EXCEEDED:
                return  # a stream that opened and was waiting for events
            assert code not in SERVER_FAILURES, (method.grpc_path, request, err.details())  # type: ignore[attr-defined]


BODIES = [m for m in catalog.methods() if m.http_body == "*" and m.http_path and not m.client_streaming]


@pytest.mark.parametrize("method", BODIES, ids=lambda m: m.grpc_path.rsplit(".", 1)[-1])
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(value=HOSTILE)
def test_hostile_json_strings_through_the_gateway_never_answer_5xx(
    setting: dict[str, Any], method: catalog.Method, value: str
) -> None:
    fields = method.descriptor.input_type.fields
    body = {f.name: ([value] if f.is_repeated else value) for f in fields if f.type == FieldDescriptor.TYPE_STRING}
    path = method.http_path.replace("{", "").replace("}", "")  # a literal segment where an id goes
    role = "admin" if method.access in ("ADMIN", "INTERNAL") else "trader"
    headers = {} if method.access == "PUBLIC" else bearer(setting["tokens"][role])
    r = setting["client"].request(method.http_verb.upper(), path, json=body, headers=headers)
    assert r.status_code < 500, (method.grpc_path, value[:40], r.status_code, r.text[:300])


ORDER_TEXT = st.one_of(HOSTILE, st.text(max_size=20))


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(
    orders=st.lists(
        st.tuples(ORDER_TEXT, ORDER_TEXT, st.sampled_from(["", "1e999999", "49000", "1_0"])), min_size=4, max_size=4
    )
)
def test_hostile_orders_on_ones_own_challenges_fail_alone(
    stack: Stack, setting: dict[str, Any], orders: list[tuple[str, str, str]]
) -> None:
    """Valid orders but for hostile notes, tags and stops, four at once on the fuzzer's own
    challenges, while the second trader's orders are in flight (checked when the module's
    fixture ends: every one of them filled)."""
    own = setting.setdefault(
        "challenges", [new_challenge(setting["client"], setting["fuzzer"])["id"] for _ in range(4)]
    )
    h = bearer(setting["tokens"]["trader"])

    def place(cid: str, order: tuple[str, str, str]) -> httpx.Response:
        note, tag, stop = order
        body = {"challenge_id": cid, "symbol": "BTCUSD", "side": "BUY", "quantity": "0.01", "note": note}
        body |= {"tags": [tag], "take_profit": stop, "idempotency_key": note[:50]}
        with httpx.Client(base_url=stack.gateway_url, timeout=30) as c:
            return c.post("/api/trades", json=body, headers=h)

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(place, own, orders))
    assert all(r.status_code < 500 for r in answers), [(r.status_code, r.text[:200]) for r in answers]
