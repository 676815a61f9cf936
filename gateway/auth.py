"""Who is calling the API: bearer tokens to principals, with a brake on guessing.

Two kinds of token: the gateway's bootstrap token (`api.token` or DATA_DIR/api-token), an admin of
every community (a central API has none), and the scoped tokens of `community-edge tokens create` (gateway/tokens.py). A
failed authentication counts against the caller's address (gateway/limits.py).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from gateway.limits import AuthFailureLimiter
from gateway.tokens import ALL, Principal, Role, TokenStore

BOOTSTRAP_ID = "api-token"
# roles that act on alerts, incidents, silences and households; platform and edge_agent only read
ACTORS = frozenset({Role.DUTY_OFFICER, Role.PROPERTY_MANAGER, Role.ADMIN})


class Unauthenticated(Exception):
    """No token, a wrong one, or a revoked one."""


@dataclass(frozen=True)
class Throttled(Exception):
    """Too many failed authentications from this address: try again after `retry_after_s`."""

    retry_after_s: float


class Authenticator:
    """Resolves a bearer token to a principal; counts failures per client address."""

    def __init__(
        self,
        bootstrap_token: str | None,
        tokens: TokenStore | None = None,
        limiter: AuthFailureLimiter | None = None,
    ) -> None:
        self._bootstrap = bootstrap_token.encode() if bootstrap_token else None
        self._tokens = tokens
        self.limiter = limiter or AuthFailureLimiter()
        self._admin = Principal(BOOTSTRAP_ID, Role.ADMIN, frozenset({ALL}))

    def authenticate(self, token: str | None, client: str) -> Principal:
        """The caller's principal; raises Throttled before looking, Unauthenticated after."""
        wait = self.limiter.retry_after(client)
        if wait is not None:
            raise Throttled(max(1.0, wait))
        principal = self._resolve(token) if token else None
        if principal is None:
            self.limiter.failed(client)
            raise Unauthenticated("missing, wrong or revoked bearer token")
        return principal

    def still_valid(self, principal: Principal) -> bool:
        """Whether a caller authenticated earlier may go on (an open live stream asks each second).

        The bootstrap token lasts as long as the process; a scoped token until it is revoked or
        expires.
        """
        if principal.token_id == BOOTSTRAP_ID:
            return self._bootstrap is not None
        return self._tokens is not None and self._tokens.active(principal.token_id)

    def _resolve(self, token: str) -> Principal | None:
        if self._bootstrap is not None and secrets.compare_digest(token.encode(), self._bootstrap):
            return self._admin
        if self._tokens is not None and token.startswith("ce_"):
            return self._tokens.verify(token)
        return None
