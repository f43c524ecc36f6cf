"""Verify the caller's token on every RPC, by the method's access option.

The access level comes from the protos (`tradesense.common.v1.access`) via the
catalogue, the same source the gateway's jwt_authn rules are rendered from, so the
edge and the services never disagree about what is public.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import grpc

from services.common import catalog, identity
from services.common.client_address import ClientAddresses
from services.common.errors import permission_denied, unauthenticated
from services.common.interceptors import WrappingInterceptor, _behavior, _rewrap, drive_stream
from services.common.jwt_verify import TokenVerifier
from services.common.revocations import Revocations
from services.common.stream_limits import StreamLimits

_PASS_THROUGH_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")


def bearer_token(metadata: Any) -> str | None:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


class AuthInterceptor(WrappingInterceptor):
    def __init__(
        self,
        verifier: TokenVerifier,
        revocations: Revocations | None = None,
        streams: StreamLimits | None = None,
        addresses: ClientAddresses | None = None,
    ) -> None:
        super().__init__()
        self.verifier = verifier
        self.revocations = revocations
        self.streams = streams or StreamLimits(0)
        self.addresses = addresses or ClientAddresses()

    async def _authorise(self, method: str, context: grpc.aio.ServicerContext) -> identity.Caller | None:
        info = catalog.by_grpc_path().get(method)
        access = info.access if info else "AUTHENTICATED"
        token = bearer_token(context.invocation_metadata())
        if token is None:
            if access in ("PUBLIC", "SERVICE_LOGIN"):
                return None
            raise unauthenticated()
        caller = await self.verifier.verify(token)  # a bad token is refused even on public RPCs
        if self.revocations is not None and self.revocations.revoked(caller):
            raise unauthenticated("token revoked; sign in again", reason="TOKEN_REVOKED")
        if access == "ADMIN" and caller.role != "admin":
            raise permission_denied("admin role required", reason="ADMIN_REQUIRED")
        if access == "INTERNAL" and caller.role not in ("service", "admin"):
            raise permission_denied("internal method", reason="INTERNAL_ONLY")
        return caller

    async def _until_revoked(
        self, caller: identity.Caller, streaming: Coroutine[Any, Any, None], context: grpc.aio.ServicerContext
    ) -> None:
        """Run a stream until it ends or its caller's token is cut off, which ends it."""
        assert self.revocations is not None
        with self.revocations.watch(caller) as revoked:
            task = asyncio.ensure_future(streaming)
            cut = asyncio.ensure_future(revoked.wait())
            try:
                await asyncio.wait({task, cut}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                cut.cancel()
                if not task.done():
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
            if task.done() and not task.cancelled() and not revoked.is_set():
                return task.result()
        await context.abort_with_status(
            unauthenticated("token revoked; sign in again", reason="TOKEN_REVOKED").to_status()
        )

    def wrap(self, handler: Any, method: str) -> Any:
        if method.startswith(_PASS_THROUGH_PREFIXES):
            return handler
        inner = _behavior(handler)

        if handler.response_streaming:

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> None:
                caller = await self._authorise(method, context)
                identity.bind(caller)
                if caller is None:
                    with self.streams.hold(None, self.addresses.of(context)):
                        await drive_stream(inner, request, context)
                    return
                with self.streams.hold(caller):
                    if self.revocations is None:
                        await drive_stream(inner, request, context)
                    else:
                        await self._until_revoked(caller, drive_stream(inner, request, context), context)

            return _rewrap(handler, None, stream)

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            identity.bind(await self._authorise(method, context))
            return await inner(request, context)

        return _rewrap(handler, unary, None)
