"""Wiring for the risk service."""

from __future__ import annotations

from pathlib import Path

import grpc

from services.common.auth_interceptor import AuthInterceptor
from services.common.clients import ServiceIdentity, channel, remote_verifier
from services.common.server import Runtime, ServiceSpec, Wiring
from services.risk.consumer import Consumer
from services.risk.servicer import RiskServicer
from tradesense.risk.v1 import risk_pb2, risk_pb2_grpc

HERE = Path(__file__).resolve().parent


async def setup(runtime: Runtime) -> Wiring:
    s = runtime.settings
    auth = channel(s.auth_addr)
    challenges = channel(s.challenges_addr)
    consumer = Consumer(runtime.engine, challenges, ServiceIdentity(s, auth))
    runtime.spawn(consumer.run(), "consumer")

    async def close() -> None:
        await auth.close()
        await challenges.close()

    runtime.on_shutdown.append(close)
    servicer = RiskServicer(runtime.engine, consumer)

    def register(server: grpc.aio.Server) -> list[str]:
        risk_pb2_grpc.add_RiskServiceServicer_to_server(servicer, server)
        return [risk_pb2.DESCRIPTOR.services_by_name["RiskService"].full_name]

    return Wiring(register, [AuthInterceptor(remote_verifier(s, auth))])


SPEC = ServiceSpec(name="risk", grpc_port=50054, metrics_port=9104, migrations=HERE / "migrations", setup=setup)
