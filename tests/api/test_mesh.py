"""Port lists as users write them in `config.weft.dev/*-ports` annotations."""

from __future__ import annotations

import re

import pytest

from weft_api.mesh import PortRange, control_plane_address, format_port_ranges, parse_port_ranges


def test_ports_and_ranges_parse_in_the_order_written() -> None:
    ranges = parse_port_ranges(" 25, 443,8000-8100,,")
    assert ranges == (PortRange(25, 25), PortRange(443, 443), PortRange(8000, 8100))
    assert format_port_ranges(ranges) == "25,443,8000-8100"


def test_an_empty_list_is_no_ports() -> None:
    assert parse_port_ranges("") == ()


@pytest.mark.parametrize("text", ["http", "0", "70000", "9000-8000", "80-", "-80", "1.5"])
def test_what_is_not_a_port_is_refused_with_the_item_named(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        parse_port_ranges(f"443,{text}")


def test_control_plane_addresses_are_absolute_names() -> None:
    address = control_plane_address("weft-config", "weft", "cluster.local", 8086)
    assert address == "weft-config.weft.svc.cluster.local.:8086"
