"""The pipeline bench's yardstick does the agent's real work: every message of the mixed
community becomes a reading of a registered device, and each round starts from the same state."""

from __future__ import annotations

from pathlib import Path

from bench.pipeline import DEVICES, _handle_all, _pipeline, _raws
from edge.decode import ProfileRegistry, default_profile_dir


def test_every_message_of_the_bench_community_becomes_a_reading(tmp_path: Path) -> None:
    profiles = ProfileRegistry.load(default_profile_dir())
    rows, raws = _raws(2 * DEVICES)
    assert len(rows) == DEVICES + 1  # the header and one row per device
    assert len({raw.topic for raw in raws}) == DEVICES
    for round_ in range(2):
        pipeline = _pipeline(tmp_path / f"round-{round_}", profiles, rows)
        _handle_all(pipeline, raws)
        assert pipeline.rules.store is not None
        pipeline.rules.store.close()
        assert pipeline.readings == len(raws)
        assert not pipeline.dead_letters_by_cause
        assert pipeline.flagged.total() == 0  # device times all sane: none replaced
        assert pipeline.device_repeats == 0
