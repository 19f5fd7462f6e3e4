"""Running iptables-save and iptables-restore, for IPv4 or IPv6, in this network namespace."""

from __future__ import annotations

import enum
import subprocess


class Family(enum.Enum):
    IPV4 = ("iptables-save", "iptables-restore")
    IPV6 = ("ip6tables-save", "ip6tables-restore")

    @property
    def save(self) -> str:
        return self.value[0]

    @property
    def restore(self) -> str:
        return self.value[1]


class IptablesError(RuntimeError):
    pass


def read_nat(family: Family) -> str:
    """The nat table, as `iptables-save -t nat` prints it."""
    return _run([family.save, "-t", "nat"], stdin=None)


def restore(family: Family, script: str) -> None:
    """Apply `script` in one transaction, leaving rules it does not name in place."""
    _run([family.restore, "--noflush", "--wait"], stdin=script)


def _run(argv: list[str], stdin: str | None) -> str:
    try:
        result = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise IptablesError(f"{argv[0]} is not installed (install the iptables package)") from None
    if result.returncode != 0:
        raise IptablesError(f"{' '.join(argv)} failed: {result.stderr.strip()}")
    return result.stdout
