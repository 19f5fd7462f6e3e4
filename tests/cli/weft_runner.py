"""Run the `weft` command as a user does: a subprocess, its output and exit code checked."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass

COMMAND = (sys.executable, "-m", "weft_cli")


@dataclass(frozen=True)
class Ran:
    code: int
    stdout: str
    stderr: str

    @property
    def one_line_error(self) -> str:
        """The error a failed command printed, checked to be one line and no traceback."""
        assert self.code != 0, self.stdout
        assert "Traceback" not in self.stderr, self.stderr
        lines = self.stderr.strip().splitlines()
        assert len(lines) == 1, self.stderr
        assert lines[0].startswith("error: "), self.stderr
        return lines[0]


def _environment(kubeconfig: str | None, env: dict[str, str] | None) -> dict[str, str]:
    environment = {**os.environ, **(env or {})}
    if kubeconfig is not None:
        environment["KUBECONFIG"] = kubeconfig
    return environment


def weft(
    *args: str,
    kubeconfig: str | None = None,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> Ran:
    done = subprocess.run(
        [*COMMAND, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=_environment(kubeconfig, env),
        timeout=timeout,
        check=False,
    )
    return Ran(done.returncode, done.stdout, done.stderr)


async def weft_async(*args: str, kubeconfig: str | None = None, within: float = 120) -> Ran:
    """For tests whose own event loop serves what the command reads (in-process proxies)."""
    process = await asyncio.create_subprocess_exec(
        *COMMAND,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_environment(kubeconfig, None),
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), within)
    assert process.returncode is not None
    return Ran(process.returncode, stdout.decode(), stderr.decode())
