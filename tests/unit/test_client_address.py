"""Whose address a call is counted under: the gateway's word for its client, nobody else's."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.client_address import ClientAddresses


@dataclass
class Context:
    peer_: str
    header: str | None = None

    def peer(self) -> str:
        return self.peer_

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("x-envoy-external-address", self.header),) if self.header else ()


def test_the_gateways_client_address_is_believed() -> None:
    addresses = ClientAddresses("127.0.0.2/32, 10.0.0.0/8")
    assert addresses.of(Context("ipv4:127.0.0.2:40000", "203.0.113.9")) == "203.0.113.9"
    assert addresses.of(Context("ipv4:10.1.2.3:40000", "198.51.100.1")) == "198.51.100.1"


def test_any_other_caller_is_its_socket_peer_whatever_it_claims() -> None:
    # A direct gRPC caller used to pick its own throttle key by sending the header.
    addresses = ClientAddresses("127.0.0.2/32")
    assert addresses.of(Context("ipv4:127.0.0.1:5555", "9.9.9.9")) == "127.0.0.1"
    assert addresses.of(Context("ipv6:[::1]:5555", "9.9.9.9")) == "::1"
    assert ClientAddresses().of(Context("ipv4:127.0.0.2:1", "9.9.9.9")) == "127.0.0.2"  # trust nobody by default
    assert addresses.of(Context("ipv4:127.0.0.2:40000")) == "127.0.0.2"  # the gateway, calling for itself
