"""What every servicer method takes besides its request: the call's context, typed once."""

from __future__ import annotations

from typing import TypeAlias

import grpc

# The async server's context: metadata in (`invocation_metadata`), headers out
# (`send_initial_metadata`), the peer, cancellation.
Context: TypeAlias = grpc.aio.ServicerContext
