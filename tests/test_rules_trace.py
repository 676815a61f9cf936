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
    events = [line for line in out[:-2] if not line.startswith("    notify")]
    rows = [line.split()[2:5] for line in events]  # kind, severity, rule
    assert len(rows) == 13
    assert rows.count(["opened", "critical", "fall"]) == 1  # the maybe_fall not withdrawn
    # ... which supersedes the possible fall: closed at the same time
    assert rows[3:5] == [["opened", "critical", "fall"], ["resolved", "major", "possible-fall"]]
    # without --config: no escalation, every event notified once to the default audience
    assert out.count("    notify default audience") == 13
    assert out[-2] == (
        "15 messages, 13 alert events (9 opened, 4 resolved), 0 dead letters, 13 notifications"
    )
    assert out[-1] == (
        "opened: confirmed-fire x1, denied-swipes x1, door-held-open x1, fall x1, "
        "no-activity x1, possible-fall x2, smoke x2"
    )
    fire = next(line for line in out if "confirmed-fire" in line)
    assert "2026-11-23 15:01:00+0800" in fire
    assert fire.endswith("(smk-1, smk-2)")


def test_with_the_gateway_settings_escalations_and_channel_routes_are_replayed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(
        "escalation:\n"
        "  policies:\n"
        "    - severity: critical\n"
        "      steps: [{after_s: 0, tier: duty_officer}, {after_s: 120, tier: property_manager}]\n"
        "      repeat_every_s: 3600\n"
        "channels:\n"
        "  - {name: duty-desk, type: wecom, key: k1, route: {tiers: [duty_officer]}}\n"
        "  - {name: managers, type: dingtalk, token: t1, route: {min_severity: critical,"
        " tiers: [property_manager]}}\n"
    )
    code = main(
        [
            "rules",
            "test",
            str(TRACES / "example.jsonl"),
            "--devices",
            str(TRACES / "example-devices.csv"),
            "--rules-file",
            str(TRACES / "example-rules.yaml"),
            "--config",
            str(config),
            "--tail",
            "600",
        ]
    )
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    fire = out.index(next(line for line in out if "opened" in line and "confirmed-fire" in line))
    assert out[fire + 1] == "    notify duty_officer via duty-desk"
    escalated = [
        out[i + 1] for i, line in enumerate(out) if "escalated" in line and "confirmed-fire" in line
    ]
    assert escalated == ["    notify property_manager via managers"]  # 2 min later, once
    assert "    notify default audience via no channel (no route takes it)" in out  # minor ones


def test_a_bad_trace_line_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "t.jsonl"
    trace.write_text('{"at": 0, "topic": "x", "payload": {}}\n{"topic": "x"}\n')
    assert main(["rules", "test", str(trace)]) == 2
    assert f"{trace}:2: not a trace entry" in capsys.readouterr().err
