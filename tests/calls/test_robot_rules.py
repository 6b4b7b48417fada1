"""Whom a robot call asks for at the robot system (calls/robot.py)."""

from __future__ import annotations

import dataclasses

import pytest

from sipspeak.calls.robot import robot_number
from sipspeak.storage.models import Trunk

BASE = Trunk(id=1, name="voicebot", username="", password="", host="sip:10.0.0.5:5080",
             inbound_project_id=None, robot=True, active=True, created_at=0, updated_at=0,
             price_per_minute_kopecks=0, billing_increment_s=60)


@pytest.mark.parametrize(("host", "username", "number"), [
    ("sip:bot@10.0.0.5:5080", "", "bot"),          # the host names the robot's number
    ("sip:bot@10.0.0.5:5080", "account", "bot"),   # ... before the account name
    ("sip:10.0.0.5:5080", "2000", "2000"),         # else the trunk's user name
    ("sip:10.0.0.5:5080", "", "79030001122"),      # else the customer's own number
    ("10.0.0.5", "", "79030001122"),
])
def test_the_number_asked_for(host: str, username: str, number: str) -> None:
    trunk = dataclasses.replace(BASE, host=host, username=username)
    assert robot_number(trunk, "79030001122") == number


def test_a_host_that_does_not_parse_is_refused() -> None:
    with pytest.raises(ValueError):
        robot_number(dataclasses.replace(BASE, host="sip:"), "79030001122")
