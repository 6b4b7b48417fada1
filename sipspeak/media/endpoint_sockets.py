"""UDP sockets for the RTP endpoints: binding a port and telling a port held by another
process from other failures (so the pool can skip it)."""

from __future__ import annotations

import errno
import socket

__all__ = ["address_in_use", "bind_udp"]


def address_in_use(exc: OSError) -> bool:
    """Whether binding failed because another socket holds the port.

    uvloop reports it as ``OSError("could not bind ...")`` without an errno,
    the ``EADDRINUSE`` error being its ``__cause__``; asyncio raises the latter.
    """
    cause = exc.__cause__
    return exc.errno == errno.EADDRINUSE or (
        isinstance(cause, OSError) and cause.errno == errno.EADDRINUSE
    )


def bind_udp(host: str, port: int) -> socket.socket:
    """A non-blocking UDP socket bound to ``host:port`` (numeric host)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock
