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

from array import array
from collections.abc import Mapping
from hashlib import blake2b

from edge.ingest.session import Delivery

# Receipts that can still match. A resend comes from the broker's in-flight window (the receive
# maximum, 2,000 by default; mosquitto overshoots it under floods), packet ids are 16-bit, and
# mosquitto numbers them in turn: half the id space is far beyond the first and short of the second.
RECEIPT_WINDOW = 32_768

Receipt = tuple[int, int, int]  # (packet id, digest, ordinal): a row of the outbox's receipts
PACKET_IDS = 65_536  # MQTT packet ids are 16-bit (1 to 65,535)


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
        # by packet id: two arrays of 512 kB, not a dict of tuples (10 MB for a full id space)
        self._digests, self._ordinals = _empty(), _empty()  # ordinal 0: no receipt
        self._count = 0
        self._ordinal = 0
        for mid, (digest, ordinal) in (known or {}).items():
            self._note(mid, digest, ordinal)
            self._ordinal = max(self._ordinal, ordinal)
        self._new: dict[int, tuple[int, int]] = {}

    def __len__(self) -> int:
        return self._count

    def _note(self, mid: int, digest: int, ordinal: int) -> None:
        if 0 < mid < PACKET_IDS:
            if not self._ordinals[mid]:
                self._count += 1
            self._digests[mid] = digest
            self._ordinals[mid] = ordinal

    def resent(self, delivery: Delivery) -> bool:
        """True for the resend of a message handled before; else notes the delivery's receipt."""
        if not delivery.qos:
            return False  # QoS 0 has no packet id and is never resent
        digest = message_digest(delivery.topic, delivery.payload)
        mid = delivery.mid
        if not 0 < mid < PACKET_IDS:
            return False  # no packet id to remember it by (not seen from a broker)
        ordinals = self._ordinals
        known = ordinals[mid]
        if (
            delivery.dup
            and known
            and self._digests[mid] == digest
            and self._ordinal - known < RECEIPT_WINDOW
        ):
            self.redelivered += 1
            return True
        if not known:
            self._count += 1
        ordinal = self._ordinal = self._ordinal + 1
        self._digests[mid] = digest
        ordinals[mid] = ordinal
        self._new[mid] = (digest, ordinal)
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
        self._digests, self._ordinals = _empty(), _empty()
        self._count = 0
        self._new.clear()
        self._ordinal += RECEIPT_WINDOW  # whatever survives somewhere is out of the window
        return self._ordinal


def _empty() -> array[int]:
    return array("q", bytes(8 * PACKET_IDS))
