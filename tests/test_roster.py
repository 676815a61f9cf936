"""Duty rosters: shifts and their handover in the community's time zone, weekly rotation,
holidays, overrides, building teams before the community's, and a roster file that is wrong."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from edge.alerts import Roster, RosterFile
from edge.errors import RosterError
from gateway.cli import main

EXAMPLE = Path(__file__).resolve().parent.parent / "deploy" / "roster.example.yaml"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def _who(roster: Roster, at: datetime, building: str | None = None) -> list[tuple[str, str]]:
    return [(d.team, d.person.id) for d in roster.on_duty("sunshine-garden", building, at)]


@pytest.fixture
def roster() -> Roster:
    return Roster.load(EXAMPLE)


def test_the_day_shift_hands_over_to_the_night_at_20_00_local_time(roster: Roster) -> None:
    # Thursday 2026-12-03, in week 152 from the anchor: rotation index 0
    assert _who(roster, _at("2026-12-03T19:59:59")) == [("garden-security", "li-wei")]
    assert _who(roster, _at("2026-12-03T20:00:00")) == [("garden-security", "zhang-san")]
    # the same moment in UTC: 12:00 UTC is 20:00 in Shanghai
    noon_utc = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    assert _who(roster, noon_utc) == [("garden-security", "zhang-san")]


def test_a_night_shift_belongs_to_the_day_it_starts(roster: Roster) -> None:
    # Sunday night 23:00 and Monday 07:59 are the same (Sunday's) shift, though the week turned
    sunday = roster.team_on_duty("garden-security", _at("2026-12-06T23:00:00"))
    monday = roster.team_on_duty("garden-security", _at("2026-12-07T07:59:00"))
    assert sunday is not None
    assert monday is not None
    assert sunday.until == monday.until == _at("2026-12-07T08:00:00").astimezone(UTC)


def test_the_rotation_turns_each_week(roster: Roster) -> None:
    this_week = _who(roster, _at("2026-12-03T10:00:00"))
    next_week = _who(roster, _at("2026-12-10T10:00:00"))
    assert [this_week, next_week] == [
        [("garden-security", "li-wei")],
        [("garden-security", "wang-fang")],
    ]


def test_an_override_beats_the_rotation_for_its_span_only(roster: Roster) -> None:
    covered = roster.team_on_duty("garden-security", _at("2026-12-06T21:00:00"))
    assert covered is not None
    assert (covered.person.id, covered.reason) == ("wang-fang", "override: covers for Li tonight")
    after = roster.team_on_duty("garden-security", _at("2026-12-07T08:00:00"))
    assert after is not None
    assert after.person.id != "wang-fang" or after.reason.startswith("shift")


def test_a_holiday_gives_the_whole_day_to_one_person(roster: Roster) -> None:
    for hour in ("00:30", "12:00", "23:59"):
        duty = roster.team_on_duty("garden-security", _at(f"2027-01-01T{hour}:00"))
        assert duty is not None
        assert (duty.person.id, duty.reason) == ("chen-jing", "holiday 2027-01-01")


def test_a_buildings_own_team_answers_first_then_the_communitys(roster: Roster) -> None:
    at = _at("2026-12-03T23:00:00")
    assert _who(roster, at, "b1") == [
        ("building-1-guard", "zhang-san"),
        ("garden-security", "zhang-san"),
    ]
    assert _who(roster, at, "b2") == [("garden-security", "zhang-san")]
    assert _who(roster, _at("2026-12-03T10:00:00"), "b1") == [("garden-security", "li-wei")]


def test_the_next_person_on_the_roster_is_who_comes_after_the_one_on_duty(
    roster: Roster,
) -> None:
    nxt = roster.next_on_roster("garden-security", _at("2026-12-03T10:00:00"))
    assert nxt is not None
    assert nxt.id == "wang-fang"
    # a rotation of one has nobody to escalate to
    assert roster.next_on_roster("building-1-guard", _at("2026-12-03T23:00:00")) is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {
                "teams": [
                    {
                        "id": "t",
                        "community": "c",
                        "shifts": [
                            {"name": "d", "start": "08:00", "end": "20:00", "rotation": ["nobody"]}
                        ],
                    }
                ]
            },
            "no person 'nobody'",
        ),
        (
            {
                "overrides": [
                    {
                        "team": "nope",
                        "person": "li-wei",
                        "start": "2026-01-01T00:00:00+08:00",
                        "end": "2026-01-02T00:00:00+08:00",
                    }
                ]
            },
            "no team 'nope'",
        ),
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"shifts": []}, "Extra inputs are not permitted"),
    ],
)
def test_a_wrong_roster_fails_at_load_naming_the_file_and_the_problem(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    data = {"people": [{"id": "li-wei", "name": "李伟"}]} | change
    path = tmp_path / "roster.yaml"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(RosterError, match=message) as raised:
        Roster.load(path)
    assert str(path) in str(raised.value)


def test_an_override_that_ends_before_it_starts_is_refused() -> None:
    start = datetime(2026, 12, 6, tzinfo=UTC)
    with pytest.raises(ValueError, match="end is not after start"):
        RosterFile.model_validate(
            {
                "people": [{"id": "a", "name": "A"}],
                "teams": [
                    {
                        "id": "t",
                        "community": "c",
                        "shifts": [
                            {"name": "d", "start": "08:00", "end": "20:00", "rotation": ["a"]}
                        ],
                    }
                ],
                "overrides": [
                    {"team": "t", "person": "a", "start": start, "end": start - timedelta(hours=1)}
                ],
            }
        )


def test_community_edge_duty_says_who_is_on_duty_with_the_phone_masked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["duty", "--roster", str(EXAMPLE), "--community", "sunshine-garden"]
    assert main([*args, "--at", "2026-12-03T21:00:00+08:00", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["team"], r["name"], r["phone"], r["shift"]) for r in rows] == [
        ("garden-security", "张三", "137****1111", "night")
    ]
    assert main([*args, "--at", "2026-12-03T21:00:00"]) == 2  # no offset: which 21:00?
    assert "needs an offset" in capsys.readouterr().err
