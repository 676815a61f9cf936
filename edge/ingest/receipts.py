"""Receipts: the packet ids a lane has handled, so that a broker's resend yields nothing new.

MQTT QoS 1 delivers at least once. A message whose results are in the outbox but whose PUBACK
never reached the broker (the agent killed between commit and ack, a stall past the keep-alive,
a connection reset with acks unsent) is sent again when the session resumes, with its original
packet id and the DUP flag set (MQTT 5 [MQTT-4.4.0-1], [MQTT-3.3.1-1]). Handled as new, it would
get a new receive time: a second point in the store, a second SOS press.

A receipt is (packet id -> digest of topic and payload, ordinal), one per packet id and lane,
committed in the same transaction as what the message produced. A delivery is a resend when

- the broker says so (DUP set), and
- the receipt of its packet id holds the same topic and payload, and
- that receipt is one of the lane's last `RECEIPT_WINDOW`: a broker reuses a packet id once we
  acknowledged it, so an old receipt belongs to another message that merely looks the same.

Anything else is handled as new, so two identical presses stay two presses (different packet
ids, or the first one's id reused after its ack, without DUP). In doubt a message is handled again
(a duplicate) rather than dropped (a loss). A broker that kept nothing of our session resends
nothing and numbers packet ids afresh: the lane forgets its receipts before it subscribes.
"""

from __future__ import annotations

from collections.abc import Mapping
from hashlib import blake2b

from edge.ingest.session import Delivery

# Receipts that can still match. A resend comes from the broker's in-flight window (the receive
# maximum, 2,000 by default; mosquitto overshoots it under floods), packet ids are 16-bit, and
# mosquitto numbers them in turn: half the id space is far beyond the first and short of the second.
RECEIPT_WINDOW = 32_768

Receipt = tuple[int, int, int]  # (packet id, digest, ordinal): a row of the outbox's receipts


def message_digest(topic: str, payload: bytes) -> int:
    """64 bits of BLAKE2b over topic and payload, as a signed integer (an SQLite INTEGER)."""
    digest = blake2b(topic.encode(), digest_size=8)
    digest.update(b"\x00")
    digest.update(payload)
    return int.from_bytes(digest.digest(), "big", signed=True)


class Receipts:
    """One lane's receipts: recognises resends and collects the receipts to commit."""

    def __init__(self, lane: str, known: Mapping[int, tuple[int, int]] | None = None) -> None:
        """`known`: packet id -> (digest, ordinal), as the outbox kept them."""
        self.lane = lane
        self.redelivered = 0  # resends recognised and acknowledged without being handled
        self._by_mid: dict[int, tuple[int, int]] = dict(known or {})
        self._ordinal = max((ordinal for _, ordinal in self._by_mid.values()), default=0)
        self._new: dict[int, tuple[int, int]] = {}

    def __len__(self) -> int:
        return len(self._by_mid)

    def resent(self, delivery: Delivery) -> bool:
        """True for the resend of a message handled before; else notes the delivery's receipt."""
        if not delivery.qos:
            return False  # QoS 0 has no packet id and is never resent
        digest = message_digest(delivery.topic, delivery.payload)
        if delivery.dup:
            known = self._by_mid.get(delivery.mid)
            if (
                known is not None
                and known[0] == digest
                and self._ordinal - known[1] < RECEIPT_WINDOW
            ):
                self.redelivered += 1
                return True
        self._ordinal += 1
        self._by_mid[delivery.mid] = self._new[delivery.mid] = (digest, self._ordinal)
        return False

    def take(self) -> list[Receipt]:
        """The receipts noted since the previous call, to commit with their batch."""
        taken, self._new = self._new, {}
        return [(mid, digest, ordinal) for mid, (digest, ordinal) in taken.items()]

    def forget(self) -> int:
        """The broker has no session of ours: no receipt can match what it sends from now on.

        Returns the ordinal below which every receipt is void, for the outbox to drop (a batch
        of the old session may still be on its way to disk with its receipts).
        """
        self._by_mid.clear()
        self._new.clear()
        self._ordinal += RECEIPT_WINDOW  # whatever survives somewhere is out of the window
        return self._ordinal
