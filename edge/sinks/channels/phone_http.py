"""The HTTP leg every phone provider shares: one POST, its JSON answer, errors named and redacted.

Connection errors, timeouts (a slow provider), 5xx and answers that are not JSON are
`SinkUnavailable`: retried by the outbox. A 4xx with a JSON body is handed back, since both
providers put their own error code in it and only that code says whether retrying can help; a
4xx without one (a wrong endpoint path) is a configuration fault and retried too, never a reason
to set an alarm aside. Messages never show a secret.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import orjson

from edge.errors import SinkUnavailable

_EXCERPT_CHARS = 200


class ProviderClient:
    """POSTs to one provider endpoint."""

    def __init__(self, where: str, url: str, *, timeout_s: float, secrets: Sequence[str]) -> None:
        self.where = where
        self.url = url
        self._secrets = [s for s in secrets if s]
        # redirects are not followed: a signed POST must not silently go elsewhere
        self._client: httpx.AsyncClient | None = httpx.AsyncClient(
            timeout=timeout_s, follow_redirects=False
        )

    async def post(self, body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        if self._client is None:
            raise RuntimeError(f"{self.where} is closed")
        try:
            response = await self._client.post(self.url, content=body, headers=dict(headers))
        except httpx.HTTPError as exc:  # refused, reset, timed out (a slow provider), TLS
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise SinkUnavailable(self.redact(f"{self.where} unreachable: {detail}")) from exc
        excerpt = " ".join(response.text[:_EXCERPT_CHARS].split())
        try:
            answer = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            answer = None
        if response.status_code >= 500 or not isinstance(answer, dict):
            raise SinkUnavailable(
                self.redact(
                    f"{self.where} answered {response.status_code} "
                    f"{response.reason_phrase}: {excerpt}"
                )
            )
        return answer

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "<secret>")
        return text
