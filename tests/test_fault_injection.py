"""Injected faults: exact counts under a seed, and what the agent's decoder makes of each kind,
also downstream of a real mosquitto."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from edge.decode import ProfileRegistry, decode, default_profile_dir
from edge.decode.decode import MAX_PAYLOAD_BYTES, Decoded
from edge.errors import BadPayload
from edge.model import RawMessage
from gateway.cli import main
from simulators.community import build_community
from simulators.faults import OVERSIZED_BYTES, FaultInjector, FaultKind, Outgoing, parse_kinds
from simulators.sensors import SimulatedDevice
from tests.mqtt_recorder import Recorder
from tests.servers import MosquittoServer

PROFILES = ProfileRegistry.load(default_profile_dir())
NOW = 1_790_000_000.0
RECEIVED = datetime.fromtimestamp(NOW, UTC)


def _fleet() -> list[SimulatedDevice]:
    devices = build_community(40, "faults", seed=1)
    for device in devices:
        device.clock = lambda: NOW
    return devices


def _run(injector: FaultInjector, messages: int) -> list[Outgoing]:
    fleet = _fleet()
    out: list[Outgoing] = []
    for n in range(messages):
        device = fleet[n % len(fleet)]
        out.extend(injector.apply(device.message(), device.profile))
    return out + injector.flush()


def _decode(outgoing: Outgoing) -> Decoded:
    message = outgoing.message
    return decode(
        RawMessage(topic=message.topic, payload=message.payload, received_at=RECEIVED), PROFILES
    )


def test_fault_counts_are_exact_and_reproducible_under_a_seed() -> None:
    first = FaultInjector(0.2, seed=7)
    sent = _run(first, 1000)
    again = FaultInjector(0.2, seed=7)
    assert [(o.message.payload, o.fault) for o in _run(again, 1000)] == [
        (o.message.payload, o.fault) for o in sent
    ]
    assert again.counts == first.counts
    by_kind = Counter(o.fault for o in sent if o.fault is not None)
    assert dict(by_kind) == {kind: n for kind, n in first.counts.items() if n}
    assert set(first.counts) == set(FaultKind)
    assert len(sent) == 1000 + first.counts[FaultKind.DUPLICATE]  # nothing lost, copies added
    assert 150 <= sum(first.counts.values()) <= 250  # about a fifth of 1,000
    assert min(first.counts.values()) >= 15  # every kind drawn
    other = FaultInjector(0.2, seed=8)
    _run(other, 1000)
    assert other.counts != first.counts


def test_no_faults_at_rate_zero_and_only_the_chosen_kinds() -> None:
    assert all(o.fault is None for o in _run(FaultInjector(0.0), 300))
    chosen = FaultInjector(0.5, [FaultKind.TRUNCATED, FaultKind.DUPLICATE], seed=2)
    _run(chosen, 300)
    assert set(chosen.counts) == {FaultKind.TRUNCATED, FaultKind.DUPLICATE}
    assert all(chosen.counts.values())


def test_each_fault_is_what_the_agent_sees_as_that_fault() -> None:
    causes: dict[FaultKind, Counter[str]] = {}
    for kind in (FaultKind.MALFORMED, FaultKind.TRUNCATED, FaultKind.OVERSIZED):
        causes[kind] = Counter()
        for outgoing in _run(FaultInjector(1.0, [kind], seed=3), 200):
            with pytest.raises(BadPayload) as refused:
                _decode(outgoing)
            causes[kind][refused.value.cause] += 1
    assert set(causes[FaultKind.MALFORMED]) == {"not_json", "wrong_type"}
    assert set(causes[FaultKind.TRUNCATED]) == {"not_json"}
    assert set(causes[FaultKind.OVERSIZED]) == {"too_large"}
    assert OVERSIZED_BYTES > MAX_PAYLOAD_BYTES


def test_skewed_device_time_is_replaced_or_an_hour_behind() -> None:
    seen: Counter[str] = Counter()
    for outgoing in _run(FaultInjector(1.0, [FaultKind.SKEWED_TIME], seed=4), 300):
        decoded = _decode(outgoing)  # a skewed clock is still a reading
        at = decoded.at.replace(microsecond=0)
        if decoded.time_source == "gateway":  # zero, the far future, a number for ISO time
            seen["replaced"] += 1
        elif at == RECEIVED:  # seconds for ms: epoch_auto tells them apart
            seen["seconds"] += 1
        else:
            assert at == RECEIVED - timedelta(hours=1)
            seen["hour_behind"] += 1
    assert seen["replaced"] > seen["hour_behind"] > 0
    assert seen["seconds"] > 0


def test_duplicates_repeat_and_held_messages_arrive_after_a_later_one() -> None:
    duplicated = _run(FaultInjector(1.0, [FaultKind.DUPLICATE], seed=5), 20)
    assert len(duplicated) == 40
    for first, second in zip(duplicated[::2], duplicated[1::2], strict=True):
        assert (first.fault, second.fault) == (None, FaultKind.DUPLICATE)
        assert first.message == second.message
    injector = FaultInjector(1.0, [FaultKind.OUT_OF_ORDER], seed=6)
    device = _fleet()[0]
    sent = [o for _ in range(10) for o in injector.apply(device.message(), device.profile)]
    sent += injector.flush()
    seqs = [_decode(o).seq or 0 for o in sent]
    assert sorted(seqs) == list(range(1, 11))  # every message, none twice
    assert seqs == [2, 1, 4, 3, 6, 5, 8, 7, 10, 9]  # one held, one after: each pair swapped
    assert injector.counts[FaultKind.OUT_OF_ORDER] == 5


def test_fault_rate_and_kinds_are_checked() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        FaultInjector(1.5)
    with pytest.raises(ValueError, match=r"unknown fault kind 'garbled' \(known: duplicate, "):
        parse_kinds("duplicate,garbled")
    assert parse_kinds("truncated, duplicate,truncated") == [
        FaultKind.TRUNCATED,
        FaultKind.DUPLICATE,
    ]


def test_simulate_counts_faults_as_the_broker_delivers_them(
    mosquitto: MosquittoServer, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--devices", "30", "--community", "faults-cli", "--seed", "9", "--json"]
    args += ["--messages", "400", "--rate", "1000", "--faults", "0.25"]
    with Recorder(mosquitto.url, "ce/faults-cli/#") as recorder:
        assert main(["simulate", "--mqtt-url", mosquitto.url, *args]) == 0
        summary = orjson.loads(capsys.readouterr().out.strip().splitlines()[-1])
        received = recorder.wait_for(summary["sent"])
    faults = summary["faults"]
    assert set(faults) == {kind.value for kind in FaultKind}
    assert summary["messages"] == 400
    assert summary["sent"] == len(received) == 400 + faults["duplicate"]
    refused: Counter[str] = Counter()
    gateway_time = 0
    for topic, payload in received:
        try:
            decoded = decode(
                RawMessage(topic=topic, payload=payload, received_at=datetime.now(UTC)), PROFILES
            )
        except BadPayload as exc:
            refused[exc.cause] += 1
            continue
        gateway_time += decoded.time_source == "gateway"
    assert refused["too_large"] == faults["oversized"]
    assert refused["not_json"] + refused["wrong_type"] == faults["malformed"] + faults["truncated"]
    assert 0 < gateway_time <= faults["skewed_time"]  # an hour behind is still the device's time
    copies = Counter(received)
    assert sum(n - 1 for n in copies.values()) == faults["duplicate"]
    # the same seed sends the same faults again
    assert main(["simulate", "--mqtt-url", mosquitto.url, *args]) == 0
    assert orjson.loads(capsys.readouterr().out.strip().splitlines()[-1])["faults"] == faults
