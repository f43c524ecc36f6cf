"""Who is on the other end of a call, as far as it can be known.

Behind the gateway every call comes from Envoy, so the socket peer names Envoy, not the
client; Envoy puts the client's address in `x-envoy-external-address` (from the connection,
or from X-Forwarded-For past `xff_num_trusted_hops` trusted proxies such as a cluster's
ingress, and it drops any copy a client sent). That header is believed only from a peer in
TRUSTED_PROXIES: any other caller could write whatever it likes there, so for them the
socket peer is the address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from services.common.rpc import Context

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(raw: str | Iterable[str]) -> list[Network]:
    items = raw.split(",") if isinstance(raw, str) else raw
    return [ipaddress.ip_network(i.strip(), strict=False) for i in items if i.strip()]


def peer_ip(peer: str) -> str:
    """The IP in grpc's peer string: "ipv4:127.0.0.1:5555", "ipv6:[::1]:5555", "unix:…"."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0]
    if kind == "ipv6":
        return rest.rsplit(":", 1)[0].strip("[]")
    return peer


class ClientAddresses:
    def __init__(self, trusted_proxies: str | Iterable[str] = ()) -> None:
        self.trusted = parse_networks(trusted_proxies)

    def _trusted(self, ip: str) -> bool:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(address in n for n in self.trusted)

    def of(self, context: Context) -> str:
        peer = peer_ip(context.peer() or "")
        if self._trusted(peer):
            for key, value in context.invocation_metadata() or ():
                if key == "x-envoy-external-address" and value:
                    return str(value)[:64]
        return peer
