"""services/common: page tokens, decimals, rich errors, secret redaction."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from hypothesis import given
from hypothesis import strategies as st

from services.common import decimals, pagination
from services.common.errors import ServiceError, invalid_argument
from services.common.logging import REDACTED, redact_secrets


@given(st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=10)), max_size=4))
def test_page_token_round_trips(cursor: dict) -> None:
    page = pagination.parse(10, pagination.token(cursor))
    assert page.cursor == cursor


def test_page_tokens_are_signed_so_a_client_cannot_forge_or_edit_one() -> None:
    issued = pagination.token({"n": 50})
    assert pagination.parse(10, issued).offset("n") == 50
    payload, _, sig = issued.partition(".")
    forged = pagination._b64(b'{"n":-1}')
    edited = sig[:-1] + ("Q" if sig[-1] != "Q" else "g")  # another signature
    for token in (f"{forged}.{sig}", forged, f"{payload}.{edited}", f"{payload}x.{sig}"):
        with pytest.raises(ServiceError):
            pagination.parse(10, token)
    # A service configured with another secret (another deployment) refuses it too; its own replicas
    # share the secret and read each other's tokens.
    pagination.configure("one")
    try:
        shared = pagination.token({"n": 1})
        pagination.configure("one")
        assert pagination.parse(10, shared).offset("n") == 1
        pagination.configure("two")
        with pytest.raises(ServiceError):
            pagination.parse(10, shared)
    finally:
        pagination.configure("test")


@pytest.mark.parametrize("value", [-1, [1], "1", 1.5, True, 10**12])
def test_a_page_offset_of_the_wrong_type_or_range_is_refused_even_when_signed(value: object) -> None:
    with pytest.raises(ServiceError):
        pagination.parse(10, pagination.token({"n": value})).offset("n")


def test_page_size_is_capped_and_defaulted() -> None:
    assert pagination.parse(0, "").size == pagination.DEFAULT_PAGE_SIZE
    assert pagination.parse(10**6, "").size == pagination.MAX_PAGE_SIZE
    with pytest.raises(ServiceError) as e:
        pagination.parse(-1, "")
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    "token", ["not base64!", "bm90IGpzb24", "WzFd", "eyJuIjotMX0"]
)  # garbage, not JSON, a list, {"n":-1}
def test_foreign_page_tokens_are_invalid_argument(token: str) -> None:
    with pytest.raises(ServiceError) as e:
        pagination.parse(10, token)
    assert e.value.field_violations == {"page_token": "not a token this API issued"}


@pytest.mark.parametrize(
    # Python's Decimal() takes every one of these after the first five; an API client never means them.
    "raw",
    ["abc", "NaN", "Infinity", "1e", "", "1_0", "1e3", " 1", "1 ", "\u0661\u0662", "+1", "1.", ".5", "1" * 5000],
)
def test_decimal_parse_rejects_non_numbers(raw: str) -> None:
    with pytest.raises(ServiceError):
        decimals.parse(raw, "quantity")


def test_decimal_parse_and_format_are_exact() -> None:
    assert decimals.parse("0.1", "x") + decimals.parse("0.2", "x") == Decimal("0.3")  # type: ignore[operator]
    assert decimals.fmt(Decimal("100000.00")) == "100000.00"
    assert decimals.fmt(Decimal("-0")) == "0"
    assert decimals.fmt(Decimal("1E+5")) == "100000"
    with pytest.raises(ServiceError):
        decimals.parse("-1", "quantity", positive=True)


def test_rich_status_carries_field_violations_and_reason() -> None:
    err = invalid_argument({"email": "must be a valid email address"})
    status = err.to_status()
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT
    details = dict(status.trailing_metadata)["grpc-status-details-bin"]
    decoded = status_pb2.Status.FromString(details)
    br = error_details_pb2.BadRequest()
    info = error_details_pb2.ErrorInfo()
    assert decoded.details[0].Unpack(br) and br.field_violations[0].field == "email"
    assert decoded.details[1].Unpack(info) and info.reason == "INVALID_ARGUMENT"


def test_secrets_are_redacted_at_any_depth() -> None:
    event = {
        "event": "login",
        "password": "hunter2",
        "request": {"refresh_token": "abc", "email": "a@b.c", "nested": [{"Authorization": "Bearer x"}]},
        "database_url_dsn": "postgres://u:p@h/db",
    }
    out = redact_secrets(None, "info", event)
    assert out["password"] == REDACTED
    assert out["request"]["refresh_token"] == REDACTED
    assert out["request"]["email"] == "a@b.c"
    assert out["request"]["nested"][0]["Authorization"] == REDACTED
    assert out["database_url_dsn"] == REDACTED


async def test_an_interceptor_wraps_each_methods_handler_once() -> None:
    from services.common.interceptors import WrappingInterceptor

    wraps: list[str] = []

    class Counting(WrappingInterceptor):
        def wrap(self, handler: Any, method: str) -> Any:
            wraps.append(method)
            return ("wrapped", handler)

    first, second = object(), object()
    handlers = {"/a.S/M": first}

    async def continuation(details: Any) -> Any:
        return handlers.get(details.method)

    icpt = Counting()

    class Details:
        def __init__(self, method: str) -> None:
            self.method = method

    assert await icpt.intercept_service(continuation, Details("/a.S/M")) == ("wrapped", first)
    assert await icpt.intercept_service(continuation, Details("/a.S/M")) == ("wrapped", first)
    assert wraps == ["/a.S/M"]  # the second call reused the wrapper
    assert await icpt.intercept_service(continuation, Details("/a.S/Unknown")) is None
    handlers["/a.S/M"] = second  # an inner handler that changed is wrapped anew
    assert await icpt.intercept_service(continuation, Details("/a.S/M")) == ("wrapped", second)
    assert wraps == ["/a.S/M", "/a.S/M"]
