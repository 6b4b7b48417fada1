"""Fixtures of the media tests: a port pool on a range free right now."""

from __future__ import annotations

import random
import socket

import pytest

from sipspeak.media.portpool import PortPool


def free_port_range(size: int = 40) -> tuple[int, int]:
    """An even-aligned range of ``size`` UDP ports that are free at this moment.

    Other test runs share the machine, so a port may still be taken later;
    ``open_endpoint`` then skips to the next pair.
    """
    rng = random.Random()
    for _ in range(200):
        first = rng.randrange(20000, 60000 - size, 2)
        socks = []
        try:
            for port in range(first, first + size):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return first, first + size - 1
    raise RuntimeError("no free UDP port range found")


@pytest.fixture
def port_pool() -> PortPool:
    first, last = free_port_range()
    return PortPool(first=first, last=last)
