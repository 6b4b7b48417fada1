"""A call layer for the campaign runtime's own tests: it records what the dialer asks
(originate, bridge, hang up, ring an operator) and the test feeds the events back.  The real
call layer is exercised end to end in tests/dialer/test_dialer_e2e.py."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sipspeak.dialer.ports import (
    CallAnswered,
    DialContact,
    OperatorAnswered,
    ProjectDialSettings,
)
from sipspeak.dialer.runtime import CampaignRuntime


class FakeCallLayer:
    """CallControl and OperatorRinger that only record what they are asked."""

    def __init__(self) -> None:
        self.originated: list[tuple[str, DialContact, ProjectDialSettings]] = []
        self.bridged: list[tuple[str, int]] = []
        self.hung_up: list[str] = []
        self.abandoned: list[str] = []
        self.rings: list[tuple[str, int, str]] = []
        self.clock: Callable[[], int] | None = None
        self.rung_at: list[int] = []
        self.stopped: list[str] = []
        self.hold_music: list[str] = []

    def originate(self, contact: DialContact, settings: ProjectDialSettings) -> str:
        call_id = f"fake-{len(self.originated) + 1}"
        self.originated.append((call_id, contact, settings))
        return call_id

    def bridge(self, call_id: str, operator_id: int) -> None:
        self.bridged.append((call_id, operator_id))

    def hang_up(self, call_id: str) -> None:
        self.hung_up.append(call_id)

    def abandon(self, call_id: str) -> None:
        self.abandoned.append(call_id)
        self.hung_up.append(call_id)  # released, after the project's message if any

    def robot_takes(self, call_id: str) -> bool:
        return False  # no «Робот» project here: every person goes to the queue

    def ring_operator(self, ring_id: str, operator_id: int, call_id: str, *,
                      auto_answer: bool) -> None:
        self.rings.append((ring_id, operator_id, call_id))
        if self.clock is not None:
            self.rung_at.append(self.clock())

    def stop_ringing(self, ring_id: str) -> None:
        self.stopped.append(ring_id)

    def start_hold_music(self, call_id: str) -> None:
        self.hold_music.append(call_id)

    def phones(self) -> list[str]:
        return [contact.phone for _, contact, _ in self.originated]

    def call_of(self, phone: str) -> str:
        return next(cid for cid, contact, _ in self.originated if contact.phone == phone)


async def until(check: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


StartDialer = Callable[[], Awaitable[tuple[CampaignRuntime, FakeCallLayer]]]
"""The web tests' ``start_dialer`` fixture: starts the campaign runtime over a FakeCallLayer."""


async def talk_with_free_operator(runtime: CampaignRuntime, calls: FakeCallLayer,
                                  operator_id: int) -> tuple[str, DialContact]:
    """The operator becomes free, the dialer calls for him, the customer answers and he
    answers his ringing phone: ``(call id, the contact dialled)``."""
    runtime.set_agent_status(operator_id, "available")
    await until(lambda: bool(calls.originated), "a dial for the free operator")
    call_id, contact, _ = calls.originated[0]
    runtime.on_call_event(CallAnswered(call_id, runtime.now_ms()))
    await until(lambda: bool(calls.rings), "his phone rings")
    runtime.on_operator_event(OperatorAnswered(calls.rings[0][0], operator_id,
                                               runtime.now_ms()))
    return call_id, contact
