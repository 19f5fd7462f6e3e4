"""The penalty box: an address that flooded waits before its next connection is served."""

from __future__ import annotations

from weft_proxy.policies.clock import ManualClock
from weft_proxy.policies.penalty import MAX_ADDRESSES, PENALTY_S, PenaltyBox


def test_a_punished_address_waits_out_its_penalty_and_no_other_does() -> None:
    clock = ManualClock()
    box = PenaltyBox(clock)
    box.punish("10.0.0.1")
    assert box.wait("10.0.0.1") == PENALTY_S
    assert box.wait("10.0.0.2") == 0
    clock.advance(PENALTY_S / 4)
    assert box.wait("10.0.0.1") == PENALTY_S * 3 / 4
    clock.advance(PENALTY_S)
    assert box.wait("10.0.0.1") == 0


def test_flooding_again_starts_a_new_penalty() -> None:
    clock = ManualClock()
    box = PenaltyBox(clock)
    box.punish("10.0.0.1")
    clock.advance(PENALTY_S / 2)
    box.punish("10.0.0.1")
    assert box.wait("10.0.0.1") == PENALTY_S


def test_the_box_holds_a_bounded_number_of_addresses_dropping_the_oldest() -> None:
    clock = ManualClock()
    box = PenaltyBox(clock)
    for n in range(MAX_ADDRESSES + 10):
        box.punish(f"addr-{n}")
    assert box.wait("addr-0") == 0  # forgotten first
    assert box.wait(f"addr-{MAX_ADDRESSES + 9}") == PENALTY_S
