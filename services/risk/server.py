"""Wiring for the risk service."""

from __future__ import annotations

import os
import socket
import uuid
from datetime import timedelta
from pathlib import Path

import grpc
from tradesense.risk.v1 import risk_pb2, risk_pb2_grpc

from services.common.clients import ServiceIdentity, channel
from services.common.config import ServiceSettings
from services.common.partition_leases import Leases
from services.common.remote_auth import remote_auth
from services.common.server import Runtime, ServiceSpec, Wiring
from services.risk.consumer import OWNED, Consumer
from services.risk.servicer import RiskServicer

HERE = Path(__file__).resolve().parent


class RiskSettings(ServiceSettings):
    # An ACTIVE challenge with no event for this long gets an inactivity alert (once a day).
    risk_inactivity_hours: float = 72.0
    # Events applied in one transaction at most (see consumer.py).
    risk_consumer_batch: int = 200
    # Trades CSV uploads (AnalyzeTrades): the body's cap, and how many run at once (one per user).
    risk_upload_max_mib: int = 32
    risk_uploads_max: int = 2


async def setup(runtime: Runtime) -> Wiring:
    s = runtime.settings
    auth = channel(s.auth_addr)
    challenges = channel(s.challenges_addr)
    owner = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    leases = Leases(runtime.engine, owner, owned_gauge=OWNED)
    consumer = Consumer(runtime.engine, challenges, ServiceIdentity(s, auth), leases, batch=s.risk_consumer_batch)
    leases.on_change = consumer.partitions_changed
    await leases.step()  # our share before the first stream
    runtime.spawn(leases.run(), "leases")
    runtime.spawn(consumer.run(), "consumer")
    runtime.spawn(consumer.watch_inactivity(timedelta(hours=s.risk_inactivity_hours)), "inactivity")

    async def close() -> None:
        await leases.release_all()
        await auth.close()
        await challenges.close()

    runtime.on_shutdown.append(close)
    servicer = RiskServicer(
        runtime.engine,
        consumer,
        heartbeat=s.sse_heartbeat_seconds,
        upload_max_bytes=s.risk_upload_max_mib * 2**20,
        uploads=s.risk_uploads_max,
    )

    def register(server: grpc.aio.Server) -> list[str]:
        risk_pb2_grpc.add_RiskServiceServicer_to_server(servicer, server)
        return [risk_pb2.DESCRIPTOR.services_by_name["RiskService"].full_name]

    return Wiring(register, [remote_auth(runtime, auth)])


SPEC = ServiceSpec(
    name="risk",
    grpc_port=50054,
    metrics_port=9104,
    migrations=HERE / "migrations",
    setup=setup,
    settings_cls=RiskSettings,
)
