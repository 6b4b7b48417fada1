"""Phone registrations kept across restarts: the stored form of a binding and its table."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from sipspeak.calls.phones import binding_row, restorable_binding
from sipspeak.sip.events import Address
from sipspeak.sip.headers import NameAddr
from sipspeak.sip.registrar import Binding
from sipspeak.storage import Database
from sipspeak.storage.models import PhoneBindingRow


def binding(contact: str, *, source: Address | None, expires_at: float = 130.0,
            q: Decimal | None = Decimal("0.7")) -> Binding:
    return Binding(extension="101", contact=NameAddr.parse(contact), expires_at=expires_at,
                   q=q, call_id="c-1@phone", cseq=7, source=source, user_agent="Yealink T21")


def test_a_udp_binding_survives_the_stored_form_on_another_clock() -> None:
    original = binding('"Оператор 1" <sip:101@192.168.1.20:5062;transport=udp>;+sip.instance='
                       '"<urn:uuid:00000000-0000-0000-0000-000000000001>"',
                       source=Address("UDP", "203.0.113.9", 40312))
    # Stored at loop time 100 s = wall 1,700,000,000,000 ms: 30 s left.
    row = binding_row(original, now=100.0, wall_ms=1_700_000_000_000)
    assert row.expires_at == 1_700_000_030_000 and row.source == "UDP 203.0.113.9 40312"
    # Read back 10 s later by a process whose loop clock reads 5 s: 20 s left.
    back = restorable_binding(row, now=5.0, wall_ms=1_700_000_010_000)
    assert back == Binding(extension="101", contact=original.contact, expires_at=25.0,
                           q=Decimal("0.7"), call_id="c-1@phone", cseq=7,
                           source=Address("UDP", "203.0.113.9", 40312),
                           user_agent="Yealink T21")


@pytest.mark.parametrize("source", [Address("TCP", "127.0.0.1", 5060),
                                    Address("WS", "127.0.0.1", 8080), None])
def test_bindings_over_a_connection_are_not_restored(source: Address | None) -> None:
    row = binding_row(binding("<sip:101@127.0.0.1:5062>", source=source), now=0.0, wall_ms=0)
    assert restorable_binding(row, now=0.0, wall_ms=0) is None


@pytest.mark.parametrize("damage", [{"contact": "<sip:101@"}, {"q": "lots"},
                                    {"source": "UDP 127.0.0.1"}, {"source": "UDP  x"}])
def test_a_damaged_row_is_skipped(damage: dict[str, str]) -> None:
    row = binding_row(binding("<sip:101@127.0.0.1:5062>", source=Address("UDP", "h", 5)),
                      now=0.0, wall_ms=0)
    assert restorable_binding(row, now=0.0, wall_ms=0) is not None
    assert restorable_binding(replace(row, **damage), now=0.0, wall_ms=0) is None


async def test_the_table_keeps_the_latest_bindings_per_extension(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "bindings.db")
    try:
        def row(extension: str, contact: str, expires_at: int) -> PhoneBindingRow:
            return PhoneBindingRow(extension=extension, contact=contact, expires_at=expires_at,
                                   q=None, call_id="c", cseq=1, source="UDP 127.0.0.1 5062",
                                   user_agent=None)

        await db.phone_bindings.replace("101", [row("101", "<sip:101@a>", 2000),
                                                row("101", "<sip:101@b>", 500)])
        await db.phone_bindings.replace("102", [row("102", "<sip:102@a>", 2000)])
        await db.phone_bindings.replace("102", [row("102", "<sip:102@c>", 3000)])  # refresh
        assert [(r.extension, r.contact) for r in await db.phone_bindings.live(1000)] == [
            ("101", "<sip:101@a>"), ("102", "<sip:102@c>")]
        # The expired one is gone for good; an extension that unregistered has no rows.
        await db.phone_bindings.replace("101", [])
        assert [r.contact for r in await db.phone_bindings.live(0)] == ["<sip:102@c>"]
        with pytest.raises(ValueError, match="extension '101'"):
            await db.phone_bindings.replace("101", [row("102", "<sip:102@a>", 2000)])
        assert [r.contact for r in await db.phone_bindings.live(0)] == ["<sip:102@c>"]
    finally:
        await db.close()
