"""Fixtures for call control tests: real storage, the real runtime, real sipp / baresip peers,
and plain UDP sockets that stand for a party's RTP (tones out, FFT on what comes in)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from callworld import rtp_party, spawn, world  # noqa: E402,F401  (fixtures)


def pytest_configure(config: object) -> None:
    config.addinivalue_line(  # type: ignore[attr-defined]
        "markers", "registrar(**kwargs): the runtime's registrar (e.g. min_expires=1)")
