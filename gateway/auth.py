"""Who is calling the API: bearer tokens to principals, with a brake on guessing.

Two kinds of token: the gateway's bootstrap token (`api.token` or DATA_DIR/api-token), an admin of
every community (a central API has none), and the scoped tokens of `community-edge tokens create`
(gateway/tokens.py).

A failed authentication counts against the caller's address and against the credential it aimed
at (a scoped token's id, or the bootstrap token), each braked on its own (gateway/limits.py): a
botnet rotating addresses still meets the brake on the token it guesses, and one client guessing
from a shared NAT does not lock out the NAT's duty officers, because a token that authenticated
before (in this process) is let through whatever the brake says and then checked as usual. A
token never used before waits out the window like a guess. Failures are logged with the address
and the token id, never the secret.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections import OrderedDict
from dataclasses import dataclass

from gateway.limits import AuthFailureLimiter
from gateway.tokens import ALL, Principal, Role, TokenStore

_log = logging.getLogger(__name__)

BOOTSTRAP_ID = "api-token"
# roles that act on alerts, incidents, silences and households; platform and edge_agent only read
ACTORS = frozenset({Role.DUTY_OFFICER, Role.PROPERTY_MANAGER, Role.ADMIN})
# tokens.create makes 12 hex digits; anything else is not a token id (and not a key to count)
_TOKEN_ID = re.compile(r"[0-9a-f]{12}")
_KNOWN_MAX = 10_000  # credentials remembered as having authenticated (bounded memory)


class Unauthenticated(Exception):
    """No token, a wrong one, or a revoked one."""


@dataclass(frozen=True)
class Throttled(Exception):
    """Too many failed authentications from this address or for this credential: try again after
    `retry_after_s`."""

    retry_after_s: float


class Authenticator:
    """Resolves a bearer token to a principal; counts failures per address and per credential."""

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
        # SHA-256 of tokens that authenticated: they pass the brake (then are checked as usual)
        self._known: OrderedDict[bytes, None] = OrderedDict()

    def authenticate(self, token: str | None, client: str) -> Principal:
        """The caller's principal; raises Throttled before looking, Unauthenticated after."""
        keys = [f"address:{client}"]
        target = self._target(token) if token else None
        if target is not None:
            keys.append(f"credential:{target}")
        fingerprint = hashlib.sha256(token.encode()).digest() if token else None
        known = fingerprint is not None and fingerprint in self._known
        if not known:
            wait = self.limiter.retry_after(*keys)
            if wait is not None:
                raise Throttled(max(1.0, wait))
        principal = self._resolve(token) if token else None
        if principal is None:
            if fingerprint is not None:
                self._known.pop(fingerprint, None)  # revoked or expired since
            _log.warning(
                "failed authentication from %s: %s",
                client,
                _tried(token, target),
            )
            for key in keys:
                if self.limiter.failed(key):
                    _log.warning(
                        "%s braked for %.0f s after %d failed authentications",
                        key,
                        self.limiter.window_s,
                        self.limiter.max_failures,
                    )
            raise Unauthenticated("missing, wrong or revoked bearer token")
        assert fingerprint is not None
        self._known[fingerprint] = None
        self._known.move_to_end(fingerprint)
        if len(self._known) > _KNOWN_MAX:
            self._known.popitem(last=False)
        return principal

    def still_valid(self, principal: Principal) -> bool:
        """Whether a caller authenticated earlier may go on (an open live stream asks each second).

        The bootstrap token lasts as long as the process; a scoped token until it is revoked or
        expires.
        """
        if principal.token_id == BOOTSTRAP_ID:
            return self._bootstrap is not None
        return self._tokens is not None and self._tokens.active(principal.token_id)

    def _target(self, token: str) -> str | None:
        """The credential a presented token aims at: a scoped token's id, or the bootstrap token;
        None when it aims at nothing this API has (no key to count beyond the address)."""
        if token.startswith("ce_"):
            token_id = token[3:].partition("_")[0]
            return token_id if self._tokens is not None and _TOKEN_ID.fullmatch(token_id) else None
        return BOOTSTRAP_ID if self._bootstrap is not None else None

    def _resolve(self, token: str) -> Principal | None:
        if self._bootstrap is not None and secrets.compare_digest(token.encode(), self._bootstrap):
            return self._admin
        if self._tokens is not None and token.startswith("ce_"):
            return self._tokens.verify(token)
        return None


def _tried(token: str | None, target: str | None) -> str:
    """What a failed caller presented, for the log: a scoped token's id when the token names one
    (`ce_<id>_...`), else no name: a wrong bootstrap token and a made-up string look the same."""
    if not token:
        return "no token"
    if token.startswith("ce_"):
        return f"token {target}" if target is not None else "not a token"
    return "an unknown token"
