"""The dialer ↔ call-layer events validate themselves and stay immutable."""

import dataclasses

import pytest

from sipspeak.dialer.ports import (
    CallEnded,
    CallOutcome,
    DialContact,
    OperatorAnswered,
    ProjectDialSettings,
)


def test_failed_call_must_carry_its_sip_status() -> None:
    with pytest.raises(ValueError, match="SIP status"):
        CallEnded("c1", 10, CallOutcome.FAILED)
    assert CallEnded("c1", 10, CallOutcome.FAILED, sip_code=404).sip_code == 404
    with pytest.raises(ValueError, match="final non-2xx"):
        CallEnded("c1", 10, CallOutcome.BUSY, sip_code=200)


def test_events_are_frozen_and_slotted() -> None:
    event = OperatorAnswered("r1", 5, 100)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.at_ms = 200  # type: ignore[misc]
    assert not hasattr(event, "__dict__")


def test_dial_inputs_are_checked() -> None:
    with pytest.raises(ValueError):
        DialContact(1, "79OO")
    assert DialContact(1, "+79001234567").phone == "+79001234567"
    with pytest.raises(ValueError):
        ProjectDialSettings(
            project_id=1,
            trunk_id=1,
            caller_id="213345",
            dial_timeout_ms=0,
            amd_enabled=True,
        )
