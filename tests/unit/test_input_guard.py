"""The input guard every service runs before its handlers (issue 16, item 2): strings refuse
control characters and over-long values; decimal fields take plain notation within their
declared digits. The rules come from the protos, so these run on the real request types."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tradesense.auth.v1 import auth_pb2
from tradesense.challenges.v1 import challenges_pb2 as pb

from services.common import catalog, input_guard
from services.common.errors import ServiceError


def _order(**kw: object) -> pb.PlaceTradeRequest:
    base: dict[str, object] = {"challenge_id": "c", "symbol": "BTCUSD", "side": pb.BUY, "quantity": "0.01"}
    return pb.PlaceTradeRequest(**{**base, **kw})  # type: ignore[arg-type]


def test_a_plain_order_passes() -> None:
    input_guard.check(_order(stop_loss="49000.5", take_profit="", note="line one\nline two\ttab", tags=["x"]))


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"note": "a\x00b"}, "note"),
        ({"symbol": "BTC\x1bUSD"}, "symbol"),
        ({"symbol": "BTC\nUSD"}, "symbol"),  # one line: not multiline
        ({"tags": ["ok", "bad\x00"]}, "tags[1]"),
        ({"idempotency_key": "k\x7f"}, "idempotency_key"),
        ({"idempotency_key": "k" * 201}, "idempotency_key"),
        ({"note": "n" * 2001}, "note"),
        ({"challenge_id": "c" * 1025}, "challenge_id"),  # the default bound
        ({"take_profit": "1e999999"}, "take_profit"),
        ({"quantity": "1_0"}, "quantity"),
        ({"quantity": "\u0661"}, "quantity"),  # Arabic-Indic one
        ({"quantity": " 1"}, "quantity"),
        ({"quantity": "-1"}, "quantity"),  # not signed
        ({"quantity": "0.123456789"}, "quantity"),  # scale 8
        ({"quantity": "1234567890"}, "quantity"),  # 9 integer digits
        ({"stop_loss": "1" * 5000}, "stop_loss"),
    ],
)
def test_bad_strings_and_decimals_are_refused_with_a_field_violation(fields: dict[str, object], field: str) -> None:
    with pytest.raises(ServiceError) as err:
        input_guard.check(_order(**fields))
    assert list(err.value.field_violations) == [field]
    assert all(len(d) < 200 for d in err.value.field_violations.values())


def test_enum_numbers_the_enum_does_not_name_are_refused() -> None:
    # Found by the fuzz test: ListChallenges with status -1 reached ChallengeStatus.Name() and answered 500.
    assert [f for f, _ in input_guard.problems(pb.ListChallengesRequest(status=-1))] == ["status"]
    assert [f for f, _ in input_guard.problems(_order(side=7))] == ["side"]
    assert input_guard.problems(pb.ListChallengesRequest(status=pb.ACTIVE)) == []


def test_nested_and_auth_fields_are_checked_too() -> None:
    plan = pb.CreatePlanRequest(plan=pb.Plan(id="p", account_sizes=["100000", "1e5"], description="d\x00"))
    assert dict(input_guard.problems(plan)).keys() == {"plan.account_sizes[1]", "plan.description"}
    assert [f for f, _ in input_guard.problems(auth_pb2.RegisterRequest(display_name="A\x00"))] == ["display_name"]


CONTROL = st.characters(min_codepoint=0, max_codepoint=0x1F).filter(lambda c: c not in "\t\n\r")


@given(st.text(max_size=30), CONTROL, st.text(max_size=30))
def test_any_control_character_anywhere_in_any_request_string_is_refused(a: str, c: str, b: str) -> None:
    # Every string field of every request type of the API, at every position.
    for m in catalog.methods():
        request = m.descriptor.input_type
        for f in request.fields:
            if f.type != f.TYPE_STRING:
                continue
            cls = _message_class(request.full_name)
            msg = cls()
            value = (a + c + b)[: input_guard.DEFAULT_MAX_LENGTH]
            if f.is_repeated:
                getattr(msg, f.name).append(value)
            else:
                setattr(msg, f.name, value)
            assert input_guard.problems(msg), (request.full_name, f.name, value)


def _message_class(full_name: str) -> type:
    from google.protobuf import symbol_database

    return symbol_database.Default().GetSymbol(full_name)  # type: ignore[no-any-return]
