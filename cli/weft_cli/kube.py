"""The Kubernetes API as the CLI uses it: JSON in and out, and errors a user can read.

Raw paths rather than the generated client's models: the CLI reads a few fields of
many kinds (custom resources included), and the pod proxy answers plain text.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.api_client import ApiClient
from kubernetes_asyncio.config.config_exception import ConfigException

from weft_cli.errors import CliError
from weft_localcluster.paths import default_state_dir

REQUEST_TIMEOUT = 10.0


class ApiError(CliError):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class NotFound(ApiError):
    """A 404: `kind_unknown` when the API does not serve the resource type at all (its
    CRD is not installed), else the object does not exist."""

    def __init__(self, message: str, kind_unknown: bool) -> None:
        super().__init__(message, 404)
        self.kind_unknown = kind_unknown


@dataclass(frozen=True)
class KubeOptions:
    kubeconfig: str | None = None
    context: str | None = None

    @classmethod
    def of(cls, args: argparse.Namespace) -> KubeOptions:
        return cls(args.kubeconfig, args.context)


def kubeconfig_path(explicit: str | None) -> str | None:
    """The kubeconfig to use; None means in-cluster (a pod's ServiceAccount)."""
    chosen = explicit or os.environ.get("KUBECONFIG")
    if chosen:
        missing = [path for path in chosen.split(os.pathsep) if path and not Path(path).exists()]
        if missing:
            raise CliError(f"kubeconfig {missing[0]} does not exist")
        return chosen
    home = Path.home() / ".kube" / "config"
    if home.exists():
        return str(home)
    local = default_state_dir() / "kubeconfig"
    if local.exists():
        return str(local)
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return None
    raise CliError(
        "no kubeconfig: set KUBECONFIG, pass --kubeconfig, or start the local cluster "
        "(weft cluster up)"
    )


def _status_message(status: int, body: bytes) -> tuple[str, dict[str, Any]]:
    try:
        parsed = json.loads(body)
    except ValueError:
        return body.decode(errors="replace").strip()[:200] or f"HTTP {status}", {}
    if not isinstance(parsed, dict):
        return f"HTTP {status}", {}
    return str(parsed.get("message") or f"HTTP {status}"), parsed.get("details") or {}


class Kube:
    def __init__(self, api: ApiClient) -> None:
        self._api = api

    @property
    def server(self) -> str:
        return str(self._api.configuration.host)

    @property
    def configuration(self) -> client.Configuration:
        """Host and credentials, for clients of other protocols (port-forward)."""
        return self._api.configuration

    @classmethod
    async def connect(cls, options: KubeOptions) -> Kube:
        configuration = client.Configuration()
        path = kubeconfig_path(options.kubeconfig)
        try:
            if path is None:
                config.load_incluster_config(client_configuration=configuration)
            else:
                await config.load_kube_config(
                    config_file=path,
                    context=options.context,
                    client_configuration=configuration,
                    persist_config=False,
                )
        except (ConfigException, OSError, ValueError) as error:
            raise CliError(f"cannot use kubeconfig {path}: {error}") from None
        return cls(ApiClient(configuration))

    async def __aenter__(self) -> Kube:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self._api.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
        within: float = REQUEST_TIMEOUT,
    ) -> tuple[int, bytes]:
        """Status and body of one call; an unreachable API server raises CliError."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = await self._api.call_api(
                path,
                method,
                query_params=list((query or {}).items()),
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=within,
            )
            try:
                return response.status, await response.read()
            finally:
                response.release()
        except TimeoutError:  # before OSError, its base class
            raise CliError(
                f"the Kubernetes API at {self.server} did not answer within {within:.0f}s"
            ) from None
        except (aiohttp.ClientError, OSError) as error:
            raise CliError(f"cannot reach the Kubernetes API at {self.server}: {error}") from None

    async def call(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
        within: float = REQUEST_TIMEOUT,
    ) -> dict[str, Any]:
        """The JSON answer of a call that must succeed; errors say what went wrong."""
        status, data = await self.request(method, path, query=query, body=body, within=within)
        if 200 <= status < 300:
            parsed: dict[str, Any] = json.loads(data)
            return parsed
        message, details = _status_message(status, data)
        if status == 404:
            raise NotFound(message, kind_unknown=not details.get("name"))
        if status == 401:
            raise ApiError(
                f"the Kubernetes API at {self.server} refused our credentials: {message}", 401
            )
        raise ApiError(message, status)

    async def get(self, path: str, query: dict[str, str] | None = None) -> dict[str, Any]:
        return await self.call("GET", path, query=query)

    async def get_or_none(self, path: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return await self.get(path)
        except NotFound:
            return None

    async def items(self, path: str, query: dict[str, str] | None = None) -> list[dict[str, Any]]:
        listed = await self.get(path, query)
        found: list[dict[str, Any]] = listed.get("items") or []
        return found

    async def get_text(self, path: str, within: float, query: dict[str, str] | None = None) -> str:
        status, data = await self.request("GET", path, query=query, within=within)
        if status != 200:
            message, _ = _status_message(status, data)
            raise ApiError(message, status)
        return data.decode(errors="replace")
