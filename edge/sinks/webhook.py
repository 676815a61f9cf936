"""WebhookSink: alert events POSTed as signed JSON to a receiver (a notification channel).

Delivery is at least once: the outbox retries without limit, so a receiver must deduplicate by
`events[].id`. Each request:

    POST <url>
    Content-Type: application/json
    Idempotency-Key: <hex SHA-256 of the batch's event ids, sorted, joined by ",">
    X-Community-Edge-Timestamp: <unix seconds when this attempt was sent>
    X-Community-Edge-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body bytes>")>

    {"events": [<AlertEvent>, ...], "links": {"<alert id>": "<public_url>/console/alerts/<id>"}}

`links` is there when the gateway has a public address (`notifications.public_url`): each alert's
page in the duty console, for a receiver that shows the event to a person (never a JSON route).

The signature header is sent only when a secret is configured. To verify, a receiver computes the
HMAC over the timestamp header's value, a `.` and the raw body bytes as received, compares it with
`hmac.compare_digest`, and rejects a timestamp more than 5 minutes from its own clock (a replay).
Every attempt is signed anew, so a batch retried after a long outage carries a fresh timestamp.
The Idempotency-Key names one batch; batches after a restart or a split may group events
differently, so it is a hint: the event id is what deduplicates.

Answers: 2xx delivered. 408, 429, 5xx, 401, 403, any 3xx (redirects are not followed), timeouts
and connection errors: `SinkUnavailable`, retried (a wrong secret must not drop alerts). Any
other 4xx: `SinkRejected`; the forwarder splits the batch until the one refused event is found.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson

from edge.clock import Clock, SystemClock
from edge.errors import SinkRejected, SinkUnavailable
from edge.model import AlertEvent, Lane, Reading
from edge.sinks.refusal import HTTP_TIMEOUT_S, refusal

_log = logging.getLogger(__name__)

TIMESTAMP_HEADER = "X-Community-Edge-Timestamp"
SIGNATURE_HEADER = "X-Community-Edge-Signature"
_ERROR_BODY_CHARS = 200
# Retryable although 4xx: the receiver timed out or asks us to slow down; 401/403 is a wrong or
# missing secret, a configuration fault: keep every event and retry until it is fixed.


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Community-Edge-Signature` value of one request."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def idempotency_key(events: Sequence[AlertEvent]) -> str:
    """Hex SHA-256 of the batch's event ids, sorted and joined by commas."""
    return hashlib.sha256(",".join(sorted(e.id for e in events)).encode()).hexdigest()


def _public_url(url: str) -> str:
    """The URL without user info or query, which may hold credentials: safe for logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class WebhookSink:
    """POSTs alert events to one receiver; readings are not its business."""

    lanes: frozenset[Lane] = frozenset({"events"})

    def __init__(
        self,
        name: str,
        url: str,
        secret: str | None,
        timeout_s: float = HTTP_TIMEOUT_S,
        *,
        clock: Clock | None = None,
        link: Callable[[AlertEvent], str | None] | None = None,
    ) -> None:
        """`link`: an event's alert page in the duty console (NoticeFormat.link), or None."""
        self.name = name
        self._link = link
        self._url = url
        self._shown_url = _public_url(url)
        self._secret = secret or None
        self._clock = clock or SystemClock()
        # One client for the sink's life: connections are kept alive between batches. Redirects
        # are not followed: a POST must not silently go elsewhere.
        self._client: httpx.AsyncClient | None = httpx.AsyncClient(
            timeout=timeout_s, follow_redirects=False
        )

    async def write_readings(self, readings: Sequence[Reading]) -> None:
        return None

    async def write_events(self, events: Sequence[AlertEvent]) -> None:
        if not events:
            return
        if self._client is None:
            raise RuntimeError(f"WebhookSink {self.name} is closed")
        document: dict[str, object] = {"events": [e.model_dump(mode="json") for e in events]}
        if self._link is not None:
            links = {e.alert.id: self._link(e) for e in events}
            document["links"] = {k: v for k, v in links.items() if v is not None}
        body = orjson.dumps(document)
        timestamp = str(int(self._clock.now().timestamp()))
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": idempotency_key(events),
            TIMESTAMP_HEADER: timestamp,
        }
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = signature(self._secret, timestamp, body)
        try:
            response = await self._client.post(self._url, content=body, headers=headers)
        except httpx.HTTPError as exc:  # connection refused or reset, timeouts, TLS, protocol
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise SinkUnavailable(
                self._redact(f"webhook {self._where} unreachable: {detail}")
            ) from exc
        if response.is_success:
            _log.debug("webhook %s took %d alert events", self.name, len(events))
            return
        raise self._translate(response)

    async def close(self) -> None:
        if self._client is None:
            return
        client, self._client = self._client, None
        await client.aclose()

    @property
    def _where(self) -> str:
        return f"{self.name} at {self._shown_url}"

    def _translate(self, response: httpx.Response) -> SinkRejected | SinkUnavailable:
        status = response.status_code
        excerpt = " ".join(response.text[:_ERROR_BODY_CHARS].split())
        message = self._redact(
            f"webhook {self._where} answered {status} {response.reason_phrase}: {excerpt}"
        )
        return refusal(status, message)

    def _redact(self, text: str) -> str:
        return text.replace(self._secret, "<secret>") if self._secret else text
