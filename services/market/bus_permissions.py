"""Who may do what on the bus between market replicas: the NATS users and their subjects.

One table, rendered into the local server's configuration (devstack/nats.py) and the
Kubernetes one (k8s/render.py), so both enforce the same least privilege: only `market`
publishes ticks and answers control requests; `monitor` (an SRE's `nats sub`) may watch the
ticks and publish nothing. A client without credentials is refused at connect.
"""

from __future__ import annotations

from typing import Any

from services.market.bus import CONTROL_SUBJECT, TICKS_SUBJECT

INBOX = "_INBOX.>"  # request/reply: the asker listens on its inbox, the leader answers there

USERS: dict[str, dict[str, Any]] = {
    "market": {
        "publish": {"allow": [TICKS_SUBJECT, CONTROL_SUBJECT, INBOX]},
        "subscribe": {"allow": [TICKS_SUBJECT, CONTROL_SUBJECT, INBOX]},
    },
    "monitor": {
        "publish": {"deny": [">"]},
        "subscribe": {"allow": [TICKS_SUBJECT]},
    },
}
