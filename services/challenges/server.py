"""Wiring for the challenges service."""

from __future__ import annotations

from pathlib import Path

import grpc

from services.challenges import store
from services.challenges.domain.plans import PLANS
from services.challenges.servicer import ChallengesServicer
from services.common.auth_interceptor import AuthInterceptor
from services.common.clients import channel, remote_verifier
from services.common.server import Runtime, ServiceSpec, Wiring
from tradesense.challenges.v1 import challenges_pb2, challenges_pb2_grpc

HERE = Path(__file__).resolve().parent


async def setup(runtime: Runtime) -> Wiring:
    s = runtime.settings
    async with runtime.engine.begin() as conn:
        await store.seed_plans(conn, PLANS)
    auth = channel(s.auth_addr)

    async def close() -> None:
        await auth.close()

    runtime.on_shutdown.append(close)
    servicer = ChallengesServicer(runtime.engine)

    def register(server: grpc.aio.Server) -> list[str]:
        challenges_pb2_grpc.add_ChallengesServiceServicer_to_server(servicer, server)
        return [challenges_pb2.DESCRIPTOR.services_by_name["ChallengesService"].full_name]

    return Wiring(register, [AuthInterceptor(remote_verifier(s, auth))])


SPEC = ServiceSpec(name="challenges", grpc_port=50052, metrics_port=9102, migrations=HERE / "migrations", setup=setup)
