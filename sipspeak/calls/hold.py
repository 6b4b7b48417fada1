"""Hold: while one party holds the call, the other hears music (manual §5.2.4).

A party holds with a re-INVITE whose offer is ``sendonly`` / ``inactive`` (RFC 3264 §8.4,
RFC 6337 §5.3); :meth:`~sipspeak.calls.legs.SipLeg.answer_offer` has already answered it
and set ``leg.on_hold``.  An operator's browser holds with its ``hold`` message instead
(:mod:`~sipspeak.calls.browser`), and the same follows.  Here the bridge follows: the
holding party's side of the bridge is taken by a :class:`~sipspeak.media.player.Player`
with the default hold melody (silence when the project has «Музыка на удержании» off), so
the other party keeps receiving a continuous stream (the bridge rewrites it across the
switch) and nothing the holding party says reaches it; the resume puts the leg's own media
back and stops the player.

* the operator holds: ``call.player`` (the same player that filled the wait for an
  operator) plays to the customer;
* the customer holds: ``call.operator_music`` plays to the operator.

The holding leg sends no RTP for the whole hold, so its inactivity does not count while it
lasts (:func:`media_silence_expected`).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np

from sipspeak.media.bridge import Bridge, Side
from sipspeak.media.player import FRAME, Player

from .call import Call, OperatorLeg
from .legs import SipLeg

__all__ = ["hold_changed", "media_silence_expected"]

Spawn = Callable[[Coroutine[Any, Any, Any], str], object]


def _side(call: Call, leg: SipLeg | OperatorLeg) -> Side:
    return "customer" if leg is call.customer else "operator"


def _music(call: Call, side: Side) -> Player | None:
    """The player that stands in for ``side`` while it holds (made on first use)."""
    if side == "operator":
        if call.player is None and call.customer is not None:
            silence = None if call.music_on_hold else np.zeros(FRAME, dtype=np.int16)
            call.player = Player(codec=call.customer.endpoint.codec, audio=silence)
        return call.player
    if call.operator_music is None:
        # It plays to the operator: his codec, or the customer's before an operator joins.
        listener = call.operator or call.customer
        if listener is None:
            return None
        call.operator_music = Player(codec=listener.media_leg.codec)
    return call.operator_music


def hold_changed(call: Call, leg: SipLeg | OperatorLeg, spawn: Spawn) -> None:
    """``leg`` went on hold or came back (``leg.on_hold``): rewire the bridge."""
    bridge = call.bridge
    if bridge is None:
        return
    side = _side(call, leg)
    music = _music(call, side)
    if leg.on_hold:
        if music is not None:
            bridge.replace(side, music)
            spawn(_play(call, bridge, leg, music), f"hold music on {call.id}")
        return
    bridge.replace(side, leg.media_leg)
    if music is not None:
        spawn(music.stop(), f"hold music off {call.id}")


async def _play(call: Call, bridge: Bridge, leg: SipLeg | OperatorLeg, music: Player) -> None:
    """Start the music once the stop of an earlier resume is done (a quick hold, resume,
    hold would otherwise leave it stopped), unless the hold or the call is over by then:
    a call that ended meanwhile has stopped its players, none may start again."""
    await music.stop()
    if leg.on_hold and not call.ended.is_set() and call.bridge is bridge:
        music.start()


def media_silence_expected(call: Call, role: str) -> bool:
    """True while the leg of ``role`` holds the call: it is meant to send nothing."""
    leg = call.customer if role == "customer" else call.operator
    return leg is not None and leg.on_hold
