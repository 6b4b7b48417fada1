"""The networks a trunk's provider calls from («адреса провайдера»): parsing and matching.

Many providers deliver inbound calls from servers that are neither the registrar the trunk
registers to nor any address its host name resolves to; the trunk then lists them as IP
addresses or CIDR networks.  An INVITE from one of them is the trunk's call whatever number
it calls (the provider may put the dialled DID in the Request-URI).  Pure functions: the web
form validates with :func:`parse_sources`, call control matches with :func:`source_in`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

__all__ = ["MAX_SOURCES", "SourceListError", "format_sources", "parse_sources", "source_in"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_SOURCES = 64
"""At most this many entries per trunk."""
MIN_PREFIX = {4: 16, 6: 48}
"""Wider networks than these are refused: trusting a whole /0 (or a large part of the
Internet) would hand the trunk's queue to anyone."""
_SEPARATORS = re.compile(r"[\s,;]+")


class SourceListError(ValueError):
    """An entry that cannot be used: ``reason`` is ``invalid``, ``wide`` or ``many``."""

    def __init__(self, reason: str, entry: str) -> None:
        super().__init__(f"{reason}: {entry}")
        self.reason = reason
        self.entry = entry


def parse_sources(text: str) -> tuple[Network, ...]:
    """The networks in ``text`` (addresses and CIDR networks separated by commas, semicolons
    or white space), duplicates dropped, in their order.  Raises :class:`SourceListError`."""
    out: list[Network] = []
    for entry in _SEPARATORS.split(text.strip()):
        if not entry:
            continue
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise SourceListError("invalid", entry) from None
        if network.prefixlen < MIN_PREFIX[network.version]:
            raise SourceListError("wide", entry)
        if network not in out:
            out.append(network)
    if len(out) > MAX_SOURCES:
        raise SourceListError("many", str(len(out)))
    return tuple(out)


def format_sources(networks: Sequence[Network]) -> str:
    """The stored form: ``"185.45.152.0/24, 195.122.19.9"`` (a single host as its address)."""
    return ", ".join(
        str(n.network_address) if n.prefixlen == n.max_prefixlen else str(n) for n in networks
    )


def source_in(host: str, networks: Sequence[Network]) -> bool:
    """Whether the address ``host`` lies in one of ``networks`` (an IPv4 address reached
    as IPv4-mapped IPv6 counts as IPv4)."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address.version == n.version and address in n for n in networks)
