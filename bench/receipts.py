"""`python -m bench.receipts`: what recognising the broker's resends costs per message.

Two parts of the hot path: the lane's check and note (`Receipts.resent`: a BLAKE2b digest of topic
and payload, a dict lookup and insert), and the outbox commit of a batch of readings with and
without its receipts (one more row per message in the same fsync'd transaction). Best of five.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from edge.decode import ProfileRegistry, default_profile_dir
from edge.ingest import Delivery, Receipts
from edge.model import DeviceRef, Reading
from edge.outbox import Outbox

AT = datetime(2026, 12, 6, tzinfo=UTC)


def _check_us(deliveries: list[Delivery], repeats: int = 5) -> float:
    best = float("inf")
    for _ in range(repeats):
        receipts = Receipts("telemetry")
        start = time.perf_counter()
        for delivery in deliveries:
            receipts.resent(delivery)
        receipts.take()
        best = min(best, time.perf_counter() - start)
    return best / len(deliveries) * 1e6


async def _commit_us(batch: int, batches: int, with_receipts: bool, repeats: int = 5) -> float:
    device = DeviceRef("dor-001", "zigbee-door-contact", "door", "c1", "b01")
    best = float("inf")
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            outbox = Outbox(Path(tmp) / "o.db", {"tsdb": frozenset({"readings"})}, now=lambda: AT)
            mid = 0
            elapsed = 0.0
            for b in range(batches):
                readings = [
                    Reading.model_construct(
                        device=device,
                        fields={"contact": True, "battery": 90.0},
                        at=AT + timedelta(milliseconds=b * batch + i),
                        received_at=AT,
                        time_source="gateway",
                        seq=None,
                    )
                    for i in range(batch)
                ]
                rows = []
                for i in range(batch):
                    mid = mid % 65_535 + 1
                    rows.append((mid, hash((b, i)), b * batch + i))
                start = time.perf_counter()
                await outbox.commit(
                    readings, receipts=("telemetry", rows) if with_receipts else None
                )
                elapsed += time.perf_counter() - start
            await outbox.close()
        best = min(best, elapsed)
    return best / (batch * batches) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.receipts")
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=1000, help="messages per outbox commit")
    args = parser.parse_args()
    profiles = ProfileRegistry.load(default_profile_dir())
    example = profiles.get("zigbee-door-contact").examples[0]
    payload = orjson.dumps(example.payload)
    deliveries = [
        Delivery(example.topic, payload, n % 65_535 + 1, 1, AT, generation=1)
        for n in range(args.messages)
    ]
    check = _check_us(deliveries)
    batches = max(args.messages // args.batch // 5, 2)
    without = asyncio.run(_commit_us(args.batch, batches, with_receipts=False))
    with_ = asyncio.run(_commit_us(args.batch, batches, with_receipts=True))
    print(f"receipt check and note, per message:  {check:6.2f} µs ({len(payload)} B payload)")
    print(f"outbox commit per reading, without:    {without:6.2f} µs (batches of {args.batch})")
    print(f"outbox commit per reading, with:       {with_:6.2f} µs (+{with_ - without:.2f} µs)")


if __name__ == "__main__":
    main()
