"""gRPC clients between services: channels, JWKS fetching, the service identity."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import grpc
from google.protobuf.json_format import MessageToDict
from tradesense.auth.v1 import auth_pb2, auth_pb2_grpc

from services.common.config import ServiceSettings
from services.common.jwt_verify import KeySet, TokenVerifier

_CHANNEL_OPTIONS = [
    # With dns:/// targets on headless Services every pod is an address: spread calls per request.
    ("grpc.lb_policy_name", "round_robin"),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.enable_retries", 1),
    ("grpc.max_receive_message_length", 8 * 1024 * 1024),
]


def channel(address: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(address, options=_CHANNEL_OPTIONS)


def jwks_fetcher(auth: grpc.aio.Channel) -> Callable[[], asyncio.Future[list[dict[str, str]]]]:
    stub = auth_pb2_grpc.AuthServiceStub(auth)

    async def fetch() -> list[dict[str, str]]:
        jwks = await stub.GetJwks(auth_pb2.GetJwksRequest(), timeout=3)
        return [MessageToDict(k, preserving_proto_field_name=True) for k in jwks.keys]

    return fetch  # type: ignore[return-value]


def remote_verifier(settings: ServiceSettings, auth: grpc.aio.Channel) -> TokenVerifier:
    """Verifier for services other than auth: keys come from auth's JWKS."""
    return TokenVerifier(
        KeySet(jwks_fetcher(auth)),
        settings.jwt_issuer,
        settings.jwt_audience,
        service_audience=settings.jwt_service_audience,
    )


class ServiceIdentity:
    """A cached service token (role "service") for background calls, renewed before expiry.

    Calls made on behalf of a trader forward the trader's own token instead; this
    identity is only for work no trader started (price streams, event consumption).
    """

    def __init__(self, settings: ServiceSettings, auth: grpc.aio.Channel) -> None:
        self._stub = auth_pb2_grpc.AuthServiceStub(auth)
        self._client_id = settings.service_name
        self._secret = settings.service_client_secret
        self._token = ""
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        async with self._lock:
            if time.monotonic() > self._expires - 60:
                pair = await self._stub.IssueServiceToken(
                    auth_pb2.IssueServiceTokenRequest(
                        client_id=self._client_id, client_secret=self._secret.get_secret_value()
                    ),
                    timeout=3,
                )
                self._token = pair.access_token
                self._expires = time.monotonic() + pair.expires_in
            return self._token

    async def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {await self.token()}"),)
