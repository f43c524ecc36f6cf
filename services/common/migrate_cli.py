"""Apply one service's migrations and exit: `python -m services.common.migrate_cli <service>`.

Kubernetes runs this as an init container, so a pod only starts serving on a migrated
schema; concurrent pods wait on the same advisory lock.
"""

from __future__ import annotations

import asyncio
import importlib
import sys

from services.common import config as config_mod
from services.common import logging as logging_mod
from services.common.db import create_engine
from services.common.migrations import migrate


async def run(service: str) -> None:
    spec = importlib.import_module(f"services.{service}.server").SPEC
    settings = config_mod.load(spec.settings_cls, spec.name, spec.grpc_port, spec.metrics_port)
    logging_mod.configure(f"{service}-migrate", settings.log_level)
    engine = create_engine(settings)
    try:
        await migrate(engine, settings.schema_name, spec.migrations)
    finally:
        await engine.dispose()


def main() -> int:
    if len(sys.argv) != 2 or sys.argv[1] not in ("auth", "challenges", "market", "risk"):
        print("usage: python -m services.common.migrate_cli {auth,challenges,market,risk}", file=sys.stderr)
        return 2
    asyncio.run(run(sys.argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
