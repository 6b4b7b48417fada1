"""One call as the service holds it: its legs, media objects, state and CDR identity.

The customer's leg is always SIP; the operator's is SIP (his phone) or WebRTC (his
browser softphone, :class:`~sipspeak.calls.browser.BrowserLeg`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sipspeak.media.bridge import Bridge, Tap
from sipspeak.media.listen import Listener
from sipspeak.media.player import Player
from sipspeak.media.recorder import WavRecorder

from .amd_tap import AmdTap
from .browser import BrowserLeg
from .cdr import Tariff
from .legs import SipLeg
from .state import CallState

__all__ = ["Call", "CallLog", "OperatorLeg"]

#: The operator's side of a call: his SIP phone's leg or his browser's WebRTC leg.
OperatorLeg = SipLeg | BrowserLeg


class CallLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger that prefixes every line with the call's id and SIP Call-ID."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        extra = self.extra or {}
        return f"[{extra.get('call')} {extra.get('sip_call_id', '-')}] {msg}", kwargs


@dataclass(slots=True)
class Listening:
    """A supervisor listening in: his answered ring, the mixer feeding him, and the taps the
    bridge had before (put back when he stops)."""

    ring_id: str
    user_id: int
    listener: Listener | None = None
    taps: dict[str, Tap | None] = field(default_factory=dict)


@dataclass(eq=False, slots=True)
class Call:
    """See the module docstring; the service is the only writer."""

    id: str
    kind: str  # auto | click | manual | inbound (the calls.kind column)
    direction: str  # outbound | inbound
    state: CallState
    log: CallLog
    project_id: int | None = None
    trunk_id: int | None = None
    contact_id: int | None = None
    phone: str = ""
    caller_id: str = ""
    operator_id: int | None = None
    dialer: bool = False  # the dialer originated it (or its ACD takes it): events go there
    amd_enabled: bool = False
    amd_params: str = ""
    music_on_hold: bool = True
    auto_answer: bool = False
    abandon_message: Path | None = None  # played to a person no operator took
    operator_timeout_s: int = 30
    tariff: Tariff | None = None
    cdr_id: int | None = None
    customer: SipLeg | None = None
    operator: OperatorLeg | None = None
    bridge: Bridge | None = None
    player: Player | None = None  # plays to the customer: the wait, the operator's hold
    operator_music: Player | None = None  # plays to the operator while the customer holds
    recorder: WavRecorder | None = None
    recording_path: str | None = None
    amd: AmdTap | None = None
    amd_result: str | None = None
    ring_ids: set[str] = field(default_factory=set)
    listening: Listening | None = None  # a supervisor listening in (one at a time)
    operators_offered: bool = False
    hang_up_requested: bool = False
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    timer: asyncio.TimerHandle | None = None
    finished: asyncio.Task[None] | None = None

    @property
    def sip_call_id(self) -> str | None:
        return self.customer.call_id if self.customer is not None else None
