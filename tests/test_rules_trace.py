"""`community-edge rules test TRACE`: the shipped example trace gives exactly its alerts."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main

TRACES = Path(__file__).resolve().parent.parent / "simulators" / "traces"


def test_the_example_trace_prints_each_alert_event_and_a_summary(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(
        [
            "rules",
            "test",
            str(TRACES / "example.jsonl"),
            "--devices",
            str(TRACES / "example-devices.csv"),
            "--rules-file",
            str(TRACES / "example-rules.yaml"),
        ]
    )
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    rows = [line.split()[2:5] for line in out[:-2]]  # kind, severity, rule
    assert len(rows) == 12
    assert rows.count(["opened", "critical", "fall"]) == 1  # the maybe_fall not withdrawn
    assert out[-2] == "15 messages, 12 alert events (9 opened, 3 resolved), 0 dead letters"
    assert out[-1] == (
        "opened: confirmed-fire x1, denied-swipes x1, door-held-open x1, fall x1, "
        "no-activity x1, possible-fall x2, smoke x2"
    )
    fire = next(line for line in out if "confirmed-fire" in line)
    assert "2026-11-23 15:01:00+0800" in fire
    assert fire.endswith("(smk-1, smk-2)")


def test_a_bad_trace_line_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "t.jsonl"
    trace.write_text('{"at": 0, "topic": "x", "payload": {}}\n{"topic": "x"}\n')
    assert main(["rules", "test", str(trace)]) == 2
    assert f"{trace}:2: not a trace entry" in capsys.readouterr().err
