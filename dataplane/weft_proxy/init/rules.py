"""The rule set, as iptables-restore input: pure text in, pure text out.

Two chains of the nat table hold every rule Weft adds:
- WEFT_INBOUND (from PREROUTING): TCP arriving at the pod goes to the proxy's inbound
  port, except to the ports to skip (the proxy's admin port among them).
- WEFT_OUTBOUND (from OUTPUT): TCP the pod sends goes to the proxy's outbound port,
  except the proxy's own (its UID), loopback, and the ports to skip.
Applying replaces Weft's rules atomically (one iptables-restore transaction) and is
idempotent; removing deletes only Weft's chains and the jumps to them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from weft_api.mesh import PortRange

INBOUND_CHAIN = "WEFT_INBOUND"
OUTBOUND_CHAIN = "WEFT_OUTBOUND"
_CHAINS = (INBOUND_CHAIN, OUTBOUND_CHAIN)
_JUMP_TO_WEFT = re.compile(rf"^-A \S+ .*-j (?:{'|'.join(_CHAINS)})(?:\s|$)")
_IN_WEFT_CHAIN = re.compile(rf"^(?::|-A )(?:{'|'.join(_CHAINS)})\s")
_MULTIPORT_SLOTS = 15  # iptables' multiport takes 15 ports; a range takes two


@dataclass(frozen=True, slots=True)
class Redirect:
    inbound_port: int
    outbound_port: int
    proxy_uid: int
    skip_inbound_ports: tuple[PortRange, ...] = ()
    skip_outbound_ports: tuple[PortRange, ...] = ()


def apply_script(redirect: Redirect, current_nat: str) -> str:
    """iptables-restore --noflush input installing (or replacing) Weft's rules.

    `current_nat` is `iptables-save -t nat`: jumps to Weft's chains found there are
    deleted first, so applying twice leaves one copy. Declaring a chain that exists
    flushes it.
    """
    lines = ["*nat", *_delete_jumps(current_nat)]
    lines += [f":{chain} - [0:0]" for chain in _CHAINS]
    lines += _inbound_rules(redirect)
    lines += _outbound_rules(redirect)
    lines += [
        _rule("PREROUTING", "", "inbound TCP to the proxy", f"-j {INBOUND_CHAIN}"),
        _rule("OUTPUT", "", "outbound TCP to the proxy", f"-j {OUTBOUND_CHAIN}"),
        "COMMIT",
    ]
    return "\n".join(lines) + "\n"


def remove_script(current_nat: str) -> str | None:
    """iptables-restore --noflush input deleting Weft's rules; None when there are none."""
    declared = {line.split()[0][1:] for line in current_nat.splitlines() if line.startswith(":")}
    present = [chain for chain in _CHAINS if chain in declared]
    deletions = _delete_jumps(current_nat)
    if not present and not deletions:
        return None
    lines = ["*nat", *deletions]
    lines += [f"-F {chain}" for chain in present]
    lines += [f"-X {chain}" for chain in present]
    return "\n".join([*lines, "COMMIT"]) + "\n"


def weft_rules(current_nat: str) -> list[str]:
    """The lines of `iptables-save -t nat` output that Weft put there."""
    return [
        line
        for line in current_nat.splitlines()
        if _JUMP_TO_WEFT.match(line) or _IN_WEFT_CHAIN.match(line)
    ]


def _inbound_rules(redirect: Redirect) -> list[str]:
    skips = [
        _rule(INBOUND_CHAIN, f"-p tcp -m multiport --dports {ports}", "skip port", "-j RETURN")
        for ports in _multiport_lists(redirect.skip_inbound_ports)
    ]
    return [
        *skips,
        _rule(
            INBOUND_CHAIN,
            "-p tcp",
            "to the proxy's inbound port",
            f"-j REDIRECT --to-ports {redirect.inbound_port}",
        ),
    ]


def _outbound_rules(redirect: Redirect) -> list[str]:
    skips = [
        _rule(OUTBOUND_CHAIN, f"-p tcp -m multiport --dports {ports}", "skip port", "-j RETURN")
        for ports in _multiport_lists(redirect.skip_outbound_ports)
    ]
    return [
        # First: the proxy's own connections leave as they are, or they would loop.
        _rule(
            OUTBOUND_CHAIN,
            f"-m owner --uid-owner {redirect.proxy_uid}",
            "the proxy's own traffic",
            "-j RETURN",
        ),
        _rule(OUTBOUND_CHAIN, "-o lo", "loopback", "-j RETURN"),
        *skips,
        _rule(
            OUTBOUND_CHAIN,
            "-p tcp",
            "to the proxy's outbound port",
            f"-j REDIRECT --to-ports {redirect.outbound_port}",
        ),
    ]


def _rule(chain: str, match: str, why: str, target: str) -> str:
    match = f"{match} " if match else ""
    return f'-A {chain} {match}-m comment --comment "weft: {why}" {target}'


def _multiport_lists(ranges: tuple[PortRange, ...]) -> Iterator[str]:
    """`--dports` values of at most 15 slots each: `"25,443,8000:8100"`."""
    batch: list[str] = []
    slots = 0
    for port_range in ranges:
        needed = 1 if port_range.first == port_range.last else 2
        if slots + needed > _MULTIPORT_SLOTS:
            yield ",".join(batch)
            batch, slots = [], 0
        batch.append(str(port_range).replace("-", ":"))
        slots += needed
    if batch:
        yield ",".join(batch)


def _delete_jumps(current_nat: str) -> list[str]:
    return ["-D" + line[2:] for line in current_nat.splitlines() if _JUMP_TO_WEFT.match(line)]
