"""The live side of `weft tap` and `weft top`: choose the proxies, then stream what
they see."""

from __future__ import annotations

import argparse
from collections.abc import AsyncGenerator

from weft_cli import output
from weft_cli.observe import tap_identity, tap_request, tap_stream
from weft_cli.observe.session import Session, namespace_of
from weft_cli.observe.tap_events import Observed
from weft_cli.observe.tap_identity import TapCredentials
from weft_cli.options import DEFAULT_NAMESPACE


async def watch(
    session: Session, args: argparse.Namespace, limit: int = 0
) -> tuple[dict[str, str], AsyncGenerator[Observed, None]]:
    """Pod IP -> namespace/pod (to name peers), and the merged stream of events."""
    target = tap_request.parse_target(args.target)
    namespace = target.name if target.kind == "ns" else namespace_of(args)
    pods = await (await session.directory()).pods(namespace)
    chosen = tap_request.select(pods, target)
    request = tap_request.observe_request(args, namespace or DEFAULT_NAMESPACE, limit)
    names = {pod.ip: pod.ref for pod in pods if pod.ip}

    async def certify() -> TapCredentials:
        with output.progress("obtaining the CLI's tap certificate ..."):
            return await tap_identity.certify(
                await session.kube(), args.weft_namespace, args.trust_domain
            )

    return names, tap_stream.observe(chosen, request, output.warn, certify)
