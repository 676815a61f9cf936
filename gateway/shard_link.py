"""Shard 0's loopback link to its sibling shards' internal APIs under `run --shards N`.

Each sibling writes where its API listens to `<its data dir>/api-url`; shard 0 sends it what it
cannot answer from the sibling's files (actions on its alerts, its health, its dead letters,
readings and rule state) with the bootstrap token every shard shares. One request per call, with
a time limit: a sibling that is restarting or hung is named, never waited on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import httpx

_log = logging.getLogger(__name__)

API_URL_FILE = "api-url"  # a shard writes its API's address here once it listens
PEER_TIMEOUT_S = 5.0
HEALTH_TIMEOUT_S = 2.0  # a hung sibling must not hold up the gateway's /healthz

Params = Mapping[str, str | int | list[str]]


class ShardUnavailable(Exception):
    """A sibling shard cannot answer now (starting, restarting, hung): 503."""

    def __init__(self, message: str, *, shard: str | None = None) -> None:
        super().__init__(message)
        self.shard = shard  # its name ("shard-1"), where known


def write_api_url(data_dir: Path, url: str) -> None:
    """Say where this shard's API listens, for shard 0 to send requests to it."""
    path = data_dir / API_URL_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(url + "\n", encoding="utf-8")
    tmp.replace(path)


class ShardLink:
    """Requests to the sibling shards' loopback APIs, as the bootstrap token."""

    def __init__(self, token: str) -> None:
        self._token = token
        # one client for every sibling and call, made in the event loop on first use: a client
        # costs ~25 ms of CPU to make (it loads the CA bundle), a pooled loopback request far less
        self._client: httpx.AsyncClient | None = None

    async def send(
        self,
        peer: Path,
        method: str,
        path: str,
        body: Mapping[str, object] | None = None,
        params: Params | None = None,
        wait_s: float = PEER_TIMEOUT_S,
    ) -> httpx.Response:
        """One request to the sibling whose data dir is `peer`.

        Raises:
            ShardUnavailable: it has not said where it listens, or did not answer within `wait_s`.
        """
        try:
            url = (peer / API_URL_FILE).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ShardUnavailable(
                f"{peer.name} has not started its API yet", shard=peer.name
            ) from exc
        if self._client is None:
            # loopback only: a gateway's HTTP_PROXY (for its way out) must not carry these
            self._client = httpx.AsyncClient(
                headers={"Authorization": f"Bearer {self._token}"}, trust_env=False
            )
        try:
            return await self._client.request(
                method, f"{url}{path}", json=body, params=params, timeout=wait_s
            )
        except httpx.HTTPError as exc:
            _log.warning("%s did not answer %s %s: %s", peer.name, method, path, exc)
            raise ShardUnavailable(f"{peer.name} is not answering", shard=peer.name) from exc

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
