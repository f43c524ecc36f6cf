"""The caller check every service but auth installs: tokens verified with auth's keys, and
refused once auth cuts them off (revocations.py, followed in the background)."""

from __future__ import annotations

import time

import grpc
from tradesense.auth.v1 import auth_pb2, auth_pb2_grpc

from services.common.auth_interceptor import AuthInterceptor
from services.common.client_address import ClientAddresses
from services.common.clients import ServiceIdentity, remote_verifier
from services.common.config import ServiceSettings
from services.common.revocations import Fetch, Revocations
from services.common.server import Runtime
from services.common.stream_limits import StreamLimits


def cutoffs_from(auth: grpc.aio.Channel, identity: ServiceIdentity) -> Fetch:
    stub = auth_pb2_grpc.AuthServiceStub(auth)

    async def fetch(after: int) -> list[tuple[int, str, int]]:
        answer = await stub.ListTokenCutoffs(
            auth_pb2.ListTokenCutoffsRequest(after_sequence=after), metadata=await identity.metadata(), timeout=3
        )
        return [(c.sequence, c.subject, c.not_before_ms) for c in answer.cutoffs]

    return fetch


def remote_auth(runtime: Runtime, auth: grpc.aio.Channel) -> AuthInterceptor:
    s = runtime.settings
    revocations = Revocations()
    fetch = cutoffs_from(auth, ServiceIdentity(s, auth))
    runtime.spawn(revocations.follow(fetch, s.access_token_ttl_seconds * 1000 * 2, time.time), "token-cutoffs")
    return AuthInterceptor(remote_verifier(s, auth), revocations, stream_limits(s), ClientAddresses(s.trusted_proxies))


def stream_limits(s: ServiceSettings) -> StreamLimits:
    return StreamLimits(s.streams_per_user, s.anonymous_streams_per_address, s.anonymous_streams_total)
