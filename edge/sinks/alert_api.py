"""AlertApiSink: alert events POSTed in batches to a central alert API (`community-edge api`).

    POST <url>/v1/alert-events
    Authorization: Bearer <edge_agent token>
    {"events": [<AlertEvent>, ...]}

Through the outbox, so at least once; the central store deduplicates by event id, so each event
is stored exactly once. A batch from the outbox is sent as several requests when it would exceed
the API's body limit. Answers: 2xx delivered; 401, 403 (a wrong token, or one without this
community: a configuration fault that must not drop alerts), 408, 429, 5xx, timeouts and
connection errors: `SinkUnavailable`, retried; any other 4xx: `SinkRejected`, and the forwarder
splits the batch until the one refused event is found.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import httpx
import orjson

from edge.errors import SinkRejected, SinkUnavailable
from edge.model import AlertEvent, Lane, Reading
from edge.sinks.refusal import HTTP_TIMEOUT_S, refusal

_log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 768 * 1024  # under the central API's 1 MiB limit, with room for the envelope
MAX_REQUEST_EVENTS = 1000  # the central API's limit per batch
_ERROR_BODY_CHARS = 200


class AlertApiSink:
    """Alert events to a central alert API; readings are not its business."""

    lanes: frozenset[Lane] = frozenset({"events"})

    def __init__(self, name: str, url: str, token: str, timeout_s: float = HTTP_TIMEOUT_S) -> None:
        self.name = name
        self._endpoint = url.rstrip("/") + "/v1/alert-events"
        self._token = token
        # one client for the sink's life (kept-alive connections); a POST is never redirected
        self._client: httpx.AsyncClient | None = httpx.AsyncClient(
            timeout=timeout_s, follow_redirects=False
        )

    async def write_readings(self, readings: Sequence[Reading]) -> None:
        return None

    async def write_events(self, events: Sequence[AlertEvent]) -> None:
        if self._client is None:
            raise RuntimeError(f"AlertApiSink {self.name} is closed")
        for body in _requests(events):
            try:
                response = await self._client.post(
                    self._endpoint,
                    content=body,
                    headers={
                        "Authorization": f"Bearer {self._token}",
                        "Content-Type": "application/json",
                    },
                )
            except httpx.HTTPError as exc:  # refused, reset, timeouts, TLS, protocol
                detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                raise SinkUnavailable(
                    f"alert API {self.name} at {self._endpoint} unreachable: {detail}"
                ) from exc
            if not response.is_success:
                raise self._translate(response)
        _log.debug("alert API %s took %d alert events", self.name, len(events))

    def _translate(self, response: httpx.Response) -> SinkRejected | SinkUnavailable:
        status = response.status_code
        excerpt = " ".join(response.text[:_ERROR_BODY_CHARS].split()).replace(
            self._token, "<token>"
        )
        message = f"alert API {self.name} at {self._endpoint} answered {status}: {excerpt}"
        return refusal(status, message)

    async def close(self) -> None:
        if self._client is None:
            return
        client, self._client = self._client, None
        await client.aclose()


def _requests(events: Sequence[AlertEvent]) -> Iterator[bytes]:
    """Request bodies holding the events in order, each within the API's limits."""
    chunk: list[bytes] = []
    size = 0
    for event in events:
        encoded = orjson.dumps(event.model_dump(mode="json"))
        if chunk and (size + len(encoded) > MAX_REQUEST_BYTES or len(chunk) == MAX_REQUEST_EVENTS):
            yield b'{"events":[' + b",".join(chunk) + b"]}"
            chunk, size = [], 0
        chunk.append(encoded)
        size += len(encoded) + 1
    if chunk:
        yield b'{"events":[' + b",".join(chunk) + b"]}"
