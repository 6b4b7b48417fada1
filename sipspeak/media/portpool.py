"""The RTP port pool: even RTP ports, RTCP on the next odd one (RFC 3550 §11).

Sans-IO bookkeeping only; :mod:`sipspeak.media.endpoint` binds the sockets and
tells the pool when a port pair turned out to be taken by another process
(:meth:`PortPool.acquire` then simply hands out the next pair).
"""

from __future__ import annotations

from collections import deque

__all__ = ["PortPool", "PortPoolExhausted"]


class PortPoolExhausted(RuntimeError):
    """Every RTP port pair of the pool is in use."""


class PortPool:
    """Hands out even ports from ``[first, last]``; ``port + 1`` carries RTCP.

    Ports come out in round-robin order, so a port released by one call is the
    last to be reused (stale packets of the old call do not reach a new one).
    """

    def __init__(self, *, first: int, last: int) -> None:
        first += first % 2  # RFC 3550 §11: RTP on an even port
        if not 1024 <= first < last <= 65535:
            raise ValueError(f"invalid RTP port range {first}-{last}")
        # The last pair must fit: its RTCP port is port + 1 <= last.
        self._free: deque[int] = deque(range(first, last, 2))
        self._in_use: set[int] = set()
        self.first = first
        self.last = last

    @property
    def capacity(self) -> int:
        return len(self._free) + len(self._in_use)

    @property
    def in_use(self) -> int:
        return len(self._in_use)

    def acquire(self) -> int:
        """Reserve the next free even port; ``PortPoolExhausted`` if none is left."""
        if not self._free:
            raise PortPoolExhausted(
                f"all {self.capacity} RTP port pairs of {self.first}-{self.last} are in use"
            )
        port = self._free.popleft()
        self._in_use.add(port)
        return port

    def release(self, port: int) -> None:
        """Give a port back (to the end of the queue).  Releasing twice is an error."""
        if port not in self._in_use:
            raise ValueError(f"port {port} is not allocated from this pool")
        self._in_use.remove(port)
        self._free.append(port)
