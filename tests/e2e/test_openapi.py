"""The OpenAPI description is the gateway's real surface: schemathesis fuzzes every REST
operation through the live Envoy and every answer must conform (status, content type, body
schema) and never be a 5xx."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (  # type: ignore[attr-defined]
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from devstack.stack import Stack, StackConfig
from gateway import openapi
from tests.conftest import Database
from tests.helpers import admin_headers, bearer, register_and_login

pytestmark = pytest.mark.e2e

EXAMPLES_PER_MODE = 20
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def client(stack: Stack) -> httpx.Client:
    return httpx.Client(base_url=stack.gateway_url, timeout=20)


def test_generated_description_matches_the_protos() -> None:
    """`make protos` wrote it; a stale file would describe an API the gateway no longer serves."""
    written = json.loads((openapi.GENERATED / "openapi.json").read_text())
    assert written == json.loads(json.dumps(openapi.build()))
    assert "/api/trades" in written["paths"] and "post" in written["paths"]["/api/trades"]
    # INTERNAL methods are blocked at the edge, so they are not part of the description.
    assert not any("WatchEvent" in op["operationId"] for p in written["paths"].values() for op in p.values())


def _operations(admin: bool = False) -> list[Any]:
    schema = schemathesis.openapi.from_dict(openapi.build())
    ops = [r.ok() for r in schema.get_all_operations()]
    # Streams (SSE) never end by design; their first answer is covered by the SSE tests.
    ops = [op for op in ops if "text/event-stream" not in json.dumps(op.definition.raw["responses"])]
    if admin:
        ops = [op for op in ops if "Administrators only" in op.definition.raw.get("description", "")]
    return ops


def _fuzz(base_url: str, headers: dict[str, str], ops: list[Any]) -> int:
    calls = 0
    for op in ops:
        strategy = st.one_of(op.as_strategy(GenerationMode.POSITIVE), op.as_strategy(GenerationMode.NEGATIVE))

        @given(case=strategy)
        @settings(
            max_examples=2 * EXAMPLES_PER_MODE,
            deadline=None,
            derandomize=True,  # the same cases every run: a failure reproduces
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: schemathesis.Case) -> None:
            nonlocal calls
            calls += 1
            case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=10)

        fuzz()
    return calls


def test_schemathesis_fuzzes_every_operation_without_5xx_or_nonconforming_answers(
    stack: Stack, client: httpx.Client
) -> None:
    """As a trader: every operation, including the admin ones (which must refuse cleanly)."""
    trader = register_and_login(client)
    ops = _operations()
    assert len(ops) > 25
    calls = _fuzz(stack.gateway_url, bearer(trader["access_token"]), ops)
    assert calls >= 10 * len(ops)


def test_schemathesis_fuzzes_the_admin_operations_as_an_admin(tmp_path: Path, database: Database) -> None:
    """As an administrator, so admin inputs reach the services' validation. A stack of its
    own: fuzzed plans, rule packs and prices must not leak into other tests' data."""
    with Stack(StackConfig.ephemeral(tmp_path, database_url=database.create_database())) as stack:
        c = httpx.Client(base_url=stack.gateway_url, timeout=20)
        ops = _operations(admin=True)
        assert len(ops) >= 5
        calls = _fuzz(stack.gateway_url, admin_headers(c, stack), ops)
        assert calls >= 10 * len(ops)
