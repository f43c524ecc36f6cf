"""Which challenges this replica judges (mark-to-market, day rolls): leased partitions of the
challenge ids, by the shared lease kit (services/common/partition_leases.py)."""

from __future__ import annotations

from prometheus_client import Gauge

from services.common.partition_leases import PARTITIONS, Leases, partition_of

OWNED = Gauge("challenges_partitions_owned", "Mark-to-market partitions this replica holds.")

__all__ = ["OWNED", "PARTITIONS", "Leases", "partition_of"]
