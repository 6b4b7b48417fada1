"""A trunk's provider networks: what the form accepts, how it is stored, what matches."""

from __future__ import annotations

import pytest

from sipspeak.calls.sources import (
    MAX_SOURCES,
    SourceListError,
    format_sources,
    parse_sources,
    source_in,
)


def test_addresses_and_networks_in_any_separator_normalised_and_deduplicated() -> None:
    networks = parse_sources(" 185.45.152.7/24,195.122.19.9 ;\n2001:db8::/48  195.122.19.9/32 ")
    assert format_sources(networks) == "185.45.152.0/24, 195.122.19.9, 2001:db8::/48"
    assert parse_sources(format_sources(networks)) == networks
    assert parse_sources("") == () and parse_sources(" , ;\n") == ()


@pytest.mark.parametrize(("text", "reason", "entry"), [
    ("185.45.152.0/24, sip.zadarma.com", "invalid", "sip.zadarma.com"),
    ("10.0.0.300", "invalid", "10.0.0.300"),
    ("10.0.0.0/33", "invalid", "10.0.0.0/33"),
    ("0.0.0.0/0", "wide", "0.0.0.0/0"),
    ("10.0.0.0/15", "wide", "10.0.0.0/15"),
    ("2001:db8::/47", "wide", "2001:db8::/47"),
    ("::/0", "wide", "::/0"),
    (", ".join(f"10.0.{i // 256}.{i % 256}" for i in range(MAX_SOURCES + 1)), "many",
     str(MAX_SOURCES + 1)),
])
def test_what_cannot_be_used_is_refused_with_the_entry(text: str, reason: str,
                                                       entry: str) -> None:
    with pytest.raises(SourceListError) as caught:
        parse_sources(text)
    assert (caught.value.reason, caught.value.entry) == (reason, entry)


def test_the_widest_allowed_and_the_most_entries_allowed_pass() -> None:
    assert len(parse_sources("10.1.0.0/16, 2001:db8::/48")) == 2
    many = ", ".join(f"10.0.{i // 256}.{i % 256}" for i in range(MAX_SOURCES))
    assert len(parse_sources(many)) == MAX_SOURCES


def test_matching_an_inviting_address() -> None:
    networks = parse_sources("185.45.152.0/24, 2001:db8::/48, 127.0.0.2")
    assert source_in("185.45.152.200", networks) and source_in("127.0.0.2", networks)
    assert source_in("2001:db8:0:1::5", networks) and source_in("[2001:db8::1]", networks)
    assert source_in("::ffff:185.45.152.1", networks)  # IPv4 seen on a dual-stack socket
    assert not source_in("185.45.153.1", networks) and not source_in("127.0.0.3", networks)
    assert not source_in("2001:db9::1", networks)
    assert not source_in("provider.example", networks) and not source_in("", networks)
    assert not source_in("185.45.152.1", ())
