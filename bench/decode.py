"""`python -m bench.decode`: decode cost per message, in microseconds, for JSON and binary profiles.

Each shipped example payload is decoded in a tight loop (best of five runs); `orjson.loads` of the
same bytes is the floor every profile pays before its own fields.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

import orjson

from edge.decode import ProfileRegistry, decode, default_profile_dir
from edge.model import RawMessage

CASES = (  # (profile, example index, what it stands for)
    ("zigbee-ias-smoke", 0, "JSON, 8 flat fields"),
    ("hikvision-access-controller", 0, "JSON, nested envelope, ISO time"),
    ("lorawan-smoke-detector", 0, "binary, base64 frame, 8 frame + 2 envelope fields"),
    ("nbiot-water-meter", 0, "binary, hex frame, 8 frame + 1 envelope field"),
)


def _best_us(run: Callable[[], object], loops: int, repeats: int = 5) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(loops):
            run()
        best = min(best, time.perf_counter() - start)
    return best / loops * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.decode")
    parser.add_argument("--loops", type=int, default=20_000)
    args = parser.parse_args()
    profiles = ProfileRegistry.load(default_profile_dir())
    received = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    print(f"{'profile':30} {'decode µs':>10} {'json µs':>8}  payload")
    for name, index, what in CASES:
        example = profiles.get(name).examples[index]
        payload = orjson.dumps(example.payload)
        raw = RawMessage(topic=example.topic, payload=payload, received_at=received)
        assert decode(raw, profiles).fields == example.fields
        decode_us = _best_us(partial(decode, raw, profiles), args.loops)
        json_us = _best_us(partial(orjson.loads, payload), args.loops)
        print(f"{name:30} {decode_us:10.2f} {json_us:8.2f}  {len(payload)} B, {what}")


if __name__ == "__main__":
    main()
