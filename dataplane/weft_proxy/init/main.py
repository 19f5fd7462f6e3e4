"""`python -m weft_proxy.init apply | remove | show`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from weft_api import mesh
from weft_api.mesh import parse_port_ranges
from weft_proxy.init.iptables import Family, IptablesError, read_nat, restore
from weft_proxy.init.rules import Redirect, apply_script, remove_script, weft_rules


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="weft-proxy-init",
        description="Send the pod's TCP traffic through the Weft proxy (iptables, nat table).",
    )
    parser.add_argument("--no-ipv6", dest="ipv6", action="store_false", help="IPv4 rules only")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    apply = actions.add_parser("apply", help="install or replace the rules")
    apply.add_argument("--inbound-port", type=int, default=mesh.PROXY_INBOUND_PORT)
    apply.add_argument("--outbound-port", type=int, default=mesh.PROXY_OUTBOUND_PORT)
    apply.add_argument("--proxy-uid", type=int, default=mesh.PROXY_UID)
    apply.add_argument(
        "--skip-inbound-ports", type=parse_port_ranges, default=(), help='e.g. "4191,8000-8100"'
    )
    apply.add_argument("--skip-outbound-ports", type=parse_port_ranges, default=())
    apply.add_argument("--dry-run", action="store_true", help="print the rules, change nothing")
    actions.add_parser("remove", help="delete the rules")
    actions.add_parser("show", help="print the rules in place")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    for family in [Family.IPV4, Family.IPV6] if args.ipv6 else [Family.IPV4]:
        _ACTIONS[args.action](args, family)


def _apply(args: argparse.Namespace, family: Family) -> None:
    redirect = Redirect(
        inbound_port=args.inbound_port,
        outbound_port=args.outbound_port,
        proxy_uid=args.proxy_uid,
        skip_inbound_ports=args.skip_inbound_ports,
        skip_outbound_ports=args.skip_outbound_ports,
    )
    if args.dry_run:  # reads nothing either: what applying to empty tables would do
        print(f"# {family.restore} --noflush\n{apply_script(redirect, '')}", end="")
        return
    restore(family, apply_script(redirect, read_nat(family)))


def _remove(args: argparse.Namespace, family: Family) -> None:
    removal = remove_script(read_nat(family))
    if removal is not None:
        restore(family, removal)


def _show(args: argparse.Namespace, family: Family) -> None:
    print(f"# {family.save} -t nat (Weft's rules)", *weft_rules(read_nat(family)), sep="\n")


_ACTIONS: dict[str, Callable[[argparse.Namespace, Family], None]] = {
    "apply": _apply,
    "remove": _remove,
    "show": _show,
}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except IptablesError as error:
        print(f"weft-proxy-init: {error}", file=sys.stderr)
        return 1
    return 0
