"""Who a projected ServiceAccount token proves its bearer is, by asking the API server."""

from __future__ import annotations

from dataclasses import dataclass

from kubernetes_asyncio import client
from kubernetes_asyncio.client.api_client import ApiClient

from weft_api.mesh import IDENTITY_TOKEN_AUDIENCE

AUDIENCE = IDENTITY_TOKEN_AUDIENCE
_PREFIX = "system:serviceaccount:"


class TokenRejected(Exception):
    """The token proves nothing we accept; the message says why."""


@dataclass(frozen=True)
class ServiceAccountRef:
    namespace: str
    name: str


def service_account_of(username: str) -> ServiceAccountRef:
    """'system:serviceaccount:shop:books' -> shop/books; any other user is refused."""
    if not username.startswith(_PREFIX):
        raise TokenRejected(f"{username!r} is not a ServiceAccount")
    namespace, _, name = username.removeprefix(_PREFIX).partition(":")
    if not namespace or not name:
        raise TokenRejected(f"{username!r} is not a ServiceAccount")
    return ServiceAccountRef(namespace, name)


class TokenReviewer:
    def __init__(self, api: ApiClient, audience: str = AUDIENCE) -> None:
        self._auth = client.AuthenticationV1Api(api)
        self.audience = audience

    async def review(self, token: str) -> ServiceAccountRef:
        if not token:
            raise TokenRejected("no token")
        review = client.V1TokenReview(
            spec=client.V1TokenReviewSpec(token=token, audiences=[self.audience])
        )
        result = await self._auth.create_token_review(review)
        status = result.status
        if not status.authenticated:
            raise TokenRejected(status.error or "the API server did not authenticate the token")
        if self.audience not in (status.audiences or []):
            raise TokenRejected(f"the token is not for audience {self.audience!r}")
        return service_account_of(status.user.username)
