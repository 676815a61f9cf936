"""Receipts recognise a broker's resend (DUP, same packet id, same topic and payload, recent) and
nothing else; the outbox keeps them with their batch and forgets them when the session is gone."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from edge.clock import FakeClock
from edge.ingest import Delivery
from edge.ingest.receipts import RECEIPT_WINDOW, Receipts, message_digest
from edge.model import DeviceRef, Reading
from edge.outbox import Outbox
from edge.sinks.memory import MemorySink

AT = datetime(2026, 12, 6, tzinfo=UTC)
TOPIC = "zigbee2mqtt/sos-01"
PRESS = b'{"action":"emergency"}'


def _delivery(
    mid: int, payload: bytes = PRESS, *, dup: bool = False, topic: str = TOPIC
) -> Delivery:
    return Delivery(topic, payload, mid, 1, AT, generation=1, dup=dup)


def test_a_resend_of_a_handled_message_is_recognised() -> None:
    receipts = Receipts("alarm")
    assert not receipts.resent(_delivery(7))
    assert receipts.resent(_delivery(7, dup=True))
    assert receipts.redelivered == 1


def test_identical_messages_stay_distinct() -> None:
    receipts = Receipts("alarm")
    # two presses in one second: identical payloads, two packet ids, no DUP
    assert not receipts.resent(_delivery(1))
    assert not receipts.resent(_delivery(2))
    # the first press's id reused by the broker after our ack, for a third identical press
    assert not receipts.resent(_delivery(1))
    assert receipts.redelivered == 0


def test_dup_alone_is_not_enough() -> None:
    receipts = Receipts("alarm")
    # DUP but never handled (the first copy died with the agent before its commit): handled
    assert not receipts.resent(_delivery(3, dup=True))
    assert not receipts.resent(_delivery(4))
    # DUP with the id of another message (the first copy was another payload or topic)
    assert not receipts.resent(_delivery(4, b'{"action":"single"}', dup=True))
    assert not receipts.resent(_delivery(5))
    assert not receipts.resent(_delivery(5, dup=True, topic="zigbee2mqtt/sos-02"))
    assert receipts.redelivered == 0


def test_qos0_is_never_a_resend() -> None:
    receipts = Receipts("alarm")
    message = Delivery(TOPIC, PRESS, 0, 0, AT, generation=1, dup=True)
    assert not receipts.resent(message)
    assert not receipts.resent(message)
    assert receipts.take() == []


def test_an_old_receipt_does_not_match() -> None:
    receipts = Receipts("telemetry")
    assert not receipts.resent(_delivery(9))
    for n in range(RECEIPT_WINDOW - 1):  # other packet ids, as a broker numbers them
        assert not receipts.resent(_delivery(10 + n % 60_000, b"%d" % n))
    assert receipts.resent(_delivery(9, dup=True))  # the last receipt still in the window
    receipts = Receipts("telemetry")
    assert not receipts.resent(_delivery(9))
    for n in range(RECEIPT_WINDOW):
        assert not receipts.resent(_delivery(10 + n % 60_000, b"%d" % n))
    assert not receipts.resent(_delivery(9, dup=True))  # out of the window: handled again


def test_forgotten_receipts_match_nothing() -> None:
    receipts = Receipts("alarm")
    assert not receipts.resent(_delivery(1))
    below = receipts.forget()
    assert below > RECEIPT_WINDOW
    assert not receipts.resent(_delivery(1, dup=True))


def test_digest_separates_topic_and_payload() -> None:
    assert message_digest("a/b", b"c") != message_digest("a/", b"bc")
    assert message_digest("a/b", b"c") == message_digest("a/b", b"c")


def _outbox(path: Path) -> Outbox:
    sink = MemorySink("m")
    return Outbox(path, {sink.name: sink.lanes}, now=FakeClock(AT).now)


def _reading() -> Reading:
    device = DeviceRef("sos-01", "tuya-sos-button", "sos", "c1", "b1")
    return Reading(device=device, fields={"action": "emergency"}, at=AT, received_at=AT)


async def test_receipts_survive_a_restart_with_their_batch(tmp_path: Path) -> None:
    outbox = _outbox(tmp_path / "o.db")
    first = Receipts("alarm", outbox.receipts("alarm"))
    assert not first.resent(_delivery(41))
    await outbox.commit([_reading()], receipts=("alarm", first.take()))
    await outbox.close()

    outbox = _outbox(tmp_path / "o.db")  # the agent restarted
    second = Receipts("alarm", outbox.receipts("alarm"))
    assert Receipts("telemetry", outbox.receipts("telemetry")).take() == []
    assert second.resent(_delivery(41, dup=True))
    # a packet id reused for another message replaces the receipt
    assert not second.resent(_delivery(41, b"{}"))
    await outbox.commit([_reading()], receipts=("alarm", second.take()))
    assert outbox.receipts("alarm") == {41: (message_digest(TOPIC, b"{}"), 2)}
    await outbox.close()


async def test_forgotten_receipts_stay_forgotten_even_from_a_late_commit(tmp_path: Path) -> None:
    outbox = _outbox(tmp_path / "o.db")
    receipts = Receipts("alarm")
    assert not receipts.resent(_delivery(1))
    late = receipts.take()  # a batch of the old session, on its way to disk
    outbox.forget_receipts("alarm", receipts.forget())
    await outbox.commit([_reading()], receipts=("alarm", late))
    assert outbox.receipts("alarm") == {}
    assert not receipts.resent(_delivery(1))
    await outbox.commit([_reading()], receipts=("alarm", receipts.take()))
    assert list(outbox.receipts("alarm")) == [1]
    await outbox.close()


async def test_only_receipts_that_can_still_match_are_kept(tmp_path: Path) -> None:
    outbox = _outbox(tmp_path / "o.db")
    receipts = Receipts("telemetry")
    for batch in range(70):  # 70,000 messages in batches of 1,000
        for n in range(1000):
            receipts.resent(_delivery((batch * 1000 + n) % 65_535 + 1, b"%d" % n))
        await outbox.commit([_reading()], receipts=("telemetry", receipts.take()))
    kept = outbox.receipts("telemetry")
    assert len(kept) == 65_535  # every packet id, each with its latest receipt
    assert min(ordinal for _, ordinal in kept.values()) > 70_000 - 65_536 - 1000
    rows = outbox._conn.execute("SELECT count(*) FROM receipts").fetchone()[0]
    assert rows <= 67  # whole batches beyond what can match are gone
    await outbox.close()
