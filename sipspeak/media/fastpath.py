"""Which relay loop the engine runs: the C module if it was built, else its Python twin.

``sipspeak.media._rtpfast`` (C, built at install time when a compiler is
present) and :mod:`sipspeak.media._rtppy` provide the same three types; the
rest of the media package imports them from here.  ``SIPSPEAK_MEDIA_NATIVE=0``
in the environment forces the Python twin (to compare the two, or to rule the
C loop out while chasing a problem).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

__all__ = ["NATIVE", "TAP_RECORD", "Port", "ReceiverCore", "RewriterCore", "TapBuffer"]

from sipspeak.media._rtppy import TAP_RECORD

if TYPE_CHECKING:
    from sipspeak.media._rtppy import Port, ReceiverCore, RewriterCore, TapBuffer

    NATIVE: bool
else:
    NATIVE = False
    if os.environ.get("SIPSPEAK_MEDIA_NATIVE", "1") != "0":
        try:
            from sipspeak.media._rtpfast import (
                Port,
                ReceiverCore,
                RewriterCore,
                TapBuffer,
            )

            NATIVE = True
        except ImportError:
            pass
    if not NATIVE:
        from sipspeak.media._rtppy import Port, ReceiverCore, RewriterCore, TapBuffer
