"""Running the machine's tools (`ip`, `iptables`): async for the agent, sync for cleanup."""

from __future__ import annotations

import asyncio
import functools
import shutil
import subprocess


class CommandError(RuntimeError):
    pass


@functools.cache
def tool(name: str) -> str:
    """The absolute path of a required tool, so pods' own PATH never decides it."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")
    if found is None:
        raise CommandError(
            f"{name} is not installed (the node agent needs iproute2 and util-linux)"
        )
    return found


def _failure(argv: tuple[str, ...], code: int, stderr: str) -> CommandError:
    return CommandError(f"{' '.join(argv)} failed ({code}): {stderr.strip()}")


async def run(*argv: str, check: bool = True, stdin: str | None = None) -> str:
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate(None if stdin is None else stdin.encode())
    if check and process.returncode != 0:
        raise _failure(argv, process.returncode or 0, err.decode(errors="replace"))
    return out.decode(errors="replace")


def run_sync(*argv: str, check: bool = True) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise _failure(argv, result.returncode, result.stderr)
    return result.stdout
