"""The WebRTC gateway service: owner of every browser leg in the process.

The composition root builds one :class:`WebRtcGateway` from the configuration
and stops it on shutdown; the operator workspace asks it for a
:class:`~sipspeak.media.webrtc.WebRtcLeg` per browser call and drives the
offer/answer exchange over its WebSocket.  The gateway only keeps track of
the legs so that :meth:`WebRtcGateway.close` can end them all: the calls layer
closes each leg when its call ends, and a leg the browser closed drops out of
:attr:`WebRtcGateway.legs` by itself.
"""

from __future__ import annotations

import asyncio

from sipspeak.media.webrtc import (
    EventHandler,
    WebRtcLeg,
    WebRtcLegState,
    WebRtcSettings,
)

__all__ = ["WebRtcGateway"]


class WebRtcGateway:
    """Creates browser legs with shared settings and closes them all on shutdown."""

    def __init__(self, *, settings: WebRtcSettings | None = None) -> None:
        self.settings = settings or WebRtcSettings()
        self._legs: list[WebRtcLeg] = []
        self._closed = False

    def open_leg(
        self, *, call_id: str, on_event: EventHandler | None = None
    ) -> WebRtcLeg:
        """A new leg for one browser call (call inside the running loop)."""
        if self._closed:
            raise RuntimeError("the WebRTC gateway is closed")
        self._prune()
        leg = WebRtcLeg(settings=self.settings, call_id=call_id, on_event=on_event)
        self._legs.append(leg)
        return leg

    @property
    def legs(self) -> list[WebRtcLeg]:
        """Legs that are not closed yet."""
        self._prune()
        return list(self._legs)

    async def close(self) -> None:
        """Refuse new legs and close every open one."""
        self._closed = True
        legs, self._legs = self._legs, []
        await asyncio.gather(*(leg.close() for leg in legs))

    def _prune(self) -> None:
        self._legs = [
            leg for leg in self._legs if leg.state is not WebRtcLegState.CLOSED
        ]
