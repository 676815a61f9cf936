"""Duty rosters: people, teams per community or building, shifts with a weekly rotation, holidays
and overrides, and who is on duty at a moment, in the community's time zone.

A roster file (YAML, validated like a profile: an unknown key or a missing person fails at load,
naming the file and the key) says who the people are and how the teams take turns:

    timezone: Asia/Shanghai
    people:
      - {id: li-wei, name: 李伟, role: duty_officer, phone: "13812345678"}
    teams:
      - id: garden-security
        community: sunshine-garden          # building: b1 for a team of one building
        shifts:
          - {name: day, start: "08:00", end: "20:00", rotation: [li-wei, wang-fang]}
          - {name: night, start: "20:00", end: "08:00", rotation: [zhang-san]}
        holidays:
          - {date: 2027-01-01, person: wang-fang}
    overrides:
      - {team: garden-security, person: wang-fang, start: 2026-12-06T20:00:00+08:00,
         end: 2026-12-07T08:00:00+08:00, reason: covers for Li tonight}

A shift that ends at or before its start runs past midnight and belongs to the day it starts. The
rotation turns weekly: the person of a shift is `rotation[week % len(rotation)]`, the week counted
from Monday 2024-01-01 (a fixed anchor, so a restart or a reload never shifts the turn). A holiday
gives its whole local day to one person; an override (one person, a span of time) beats both.
Phones and chat ids are personal data: they stay in this file and in the API views of responders.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from edge.errors import RosterError
from edge.yaml_file import load_yaml_model

_log = logging.getLogger(__name__)
_ANCHOR = date(2024, 1, 1)  # a Monday: week 0 of every rotation


class Person(BaseModel):
    """Someone who can be on duty and be reached."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    name: str = Field(min_length=1, max_length=64)
    role: str = "duty_officer"
    phone: str | None = Field(default=None, max_length=32)
    wecom: str | None = None  # WeCom user id
    dingtalk: str | None = None  # DingTalk user id or mobile for @-mentions
    languages: tuple[str, ...] = ("zh",)


class Shift(BaseModel):
    """A daily span of local time and the people who take it in turn, week by week."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(min_length=1, max_length=32)
    start: time
    end: time
    rotation: tuple[str, ...] = Field(min_length=1)

    @property
    def overnight(self) -> bool:
        return self.end <= self.start

    def covers(self, local: datetime) -> date | None:
        """The day this shift began, if `local` (naive, the team's time) falls in it."""
        clock = local.time()
        if not self.overnight:
            return local.date() if self.start <= clock < self.end else None
        if clock >= self.start:
            return local.date()
        if clock < self.end:
            return local.date() - timedelta(days=1)
        return None

    def person_on(self, day: date) -> str:
        week = (day - _ANCHOR).days // 7
        return self.rotation[week % len(self.rotation)]


class Holiday(BaseModel):
    """A whole local day given to one person (whatever the shifts say)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    date: date
    person: str


class Team(BaseModel):
    """The people on duty for a community, or for one building of it."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str = Field(min_length=1, max_length=64)
    community: str = Field(min_length=1)
    building: str | None = None
    timezone: str | None = None  # the roster's when not given
    shifts: tuple[Shift, ...] = Field(min_length=1)
    holidays: tuple[Holiday, ...] = ()

    @model_validator(mode="after")
    def _shift_names_unique(self) -> Team:
        names = [s.name for s in self.shifts]
        if len(names) != len(set(names)):
            raise ValueError(f"team {self.id}: two shifts share a name")
        return self


class Override(BaseModel):
    """One person covers a team for a span of time ("I cover for Li tonight")."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    team: str
    person: str
    start: AwareDatetime
    end: AwareDatetime
    reason: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> Override:
        if self.end <= self.start:
            raise ValueError(f"override for {self.team}: end is not after start")
        return self


class RosterFile(BaseModel):
    """The roster file as written."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    timezone: str = "Asia/Shanghai"
    people: tuple[Person, ...] = ()
    teams: tuple[Team, ...] = ()
    overrides: tuple[Override, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        _zone(value)
        return value

    @model_validator(mode="after")
    def _references_resolve(self) -> RosterFile:
        people = {p.id for p in self.people}
        if len(people) != len(self.people):
            raise ValueError("two people share an id")
        teams = {t.id for t in self.teams}
        if len(teams) != len(self.teams):
            raise ValueError("two teams share an id")
        for team in self.teams:
            if team.timezone is not None:
                _zone(team.timezone)
            named = [p for s in team.shifts for p in s.rotation] + [h.person for h in team.holidays]
            for person in named:
                if person not in people:
                    raise ValueError(f"team {team.id}: no person {person!r} in people")
        for override in self.overrides:
            if override.team not in teams:
                raise ValueError(f"override: no team {override.team!r}")
            if override.person not in people:
                raise ValueError(f"override for {override.team}: no person {override.person!r}")
        return self


@dataclass(frozen=True, slots=True)
class OnDuty:
    """Who holds a team's duty at a moment, and why."""

    team: str
    community: str
    building: str | None
    person: Person
    shift: str | None  # None: a holiday or an override
    reason: str  # "shift day", "holiday 2027-01-01", "override: covers for Li tonight"
    until: datetime  # when this holding ends (UTC)


class Roster:
    """A loaded roster: answers who is on duty, and who comes next."""

    def __init__(self, spec: RosterFile, path: Path | None = None) -> None:
        self.path = path
        self.last_error: str | None = None  # why the file's latest change was not taken
        self._mtime: int | None = None
        self._use(spec)

    def _use(self, spec: RosterFile) -> None:
        self.spec = spec
        self._people = {p.id: p for p in spec.people}
        self._teams = {t.id: t for t in spec.teams}

    @classmethod
    def load(cls, path: Path) -> Roster:
        """Read and validate a roster file; raises RosterError naming the file and the key."""
        mtime = path.stat().st_mtime_ns if path.exists() else None
        roster = cls(load_yaml_model(path, RosterFile, RosterError), path)
        roster._mtime = mtime
        return roster

    def refresh(self) -> bool:
        """Take the file's change since it was read ("I cover for Li tonight" needs no restart);
        a file that no longer loads leaves the roster as it was, `last_error` saying why."""
        if self.path is None:
            return False
        try:
            mtime = self.path.stat().st_mtime_ns
        except OSError as exc:
            self.last_error = f"{self.path}: {exc.strerror or exc}; the roster read before holds"
            return False
        if mtime == self._mtime:
            return False
        self._mtime = mtime
        try:
            spec = load_yaml_model(self.path, RosterFile, RosterError)
        except RosterError as exc:
            self.last_error = f"{exc}; the roster read before holds"
            _log.error("duty roster not reloaded: %s", self.last_error)
            return False
        self._use(spec)
        self.last_error = None
        _log.info("duty roster %s reloaded: %d people, %d teams", self.path, len(self._people),
                  len(self._teams))  # fmt: skip
        return True

    def person(self, person_id: str) -> Person:
        return self._people[person_id]

    def has_team(self, team_id: str) -> bool:
        return team_id in self._teams

    def contact(self, person_id: str) -> Person | None:
        """The person with this id, None if the roster has none (`edge.sinks.Directory`)."""
        return self._people.get(person_id)

    def teams_for(self, community: str, building: str | None = None) -> list[Team]:
        """The teams that answer for a place: the building's own, then the community's."""
        own = [t for t in self.spec.teams if t.community == community and t.building == building]
        whole = [t for t in self.spec.teams if t.community == community and t.building is None]
        return own + [t for t in whole if t not in own] if building is not None else whole

    def on_duty(self, community: str, building: str | None, at: datetime) -> list[OnDuty]:
        """Who is on duty for a place at `at` (aware), the building's teams first."""
        found = [self.team_on_duty(t.id, at) for t in self.teams_for(community, building)]
        return [d for d in found if d is not None]

    def team_on_duty(self, team_id: str, at: datetime) -> OnDuty | None:
        """The person holding `team_id` at `at`; None in a gap between shifts."""
        team = self._teams[team_id]
        for override in self.spec.overrides:
            if override.team == team_id and override.start <= at < override.end:
                reason = "override" + (f": {override.reason}" if override.reason else "")
                return self._duty(team, override.person, None, reason, override.end)
        zone = _zone(team.timezone or self.spec.timezone)
        local = at.astimezone(zone).replace(tzinfo=None)
        for holiday in team.holidays:
            if holiday.date == local.date():
                end = datetime.combine(holiday.date + timedelta(days=1), time(), zone)
                return self._duty(team, holiday.person, None, f"holiday {holiday.date}", end)
        for shift in team.shifts:
            day = shift.covers(local)
            if day is None:
                continue
            end_day = day + timedelta(days=1) if shift.overnight else day
            end = datetime.combine(end_day, shift.end, zone)
            return self._duty(team, shift.person_on(day), shift.name, f"shift {shift.name}", end)
        return None

    def next_on_roster(self, team_id: str, at: datetime) -> Person | None:
        """Who comes after the person on duty in the current shift's rotation (for escalation
        past someone who does not answer); None when the rotation has nobody else."""
        duty = self.team_on_duty(team_id, at)
        if duty is None or duty.shift is None:
            return None
        team = self._teams[team_id]
        shift = next(s for s in team.shifts if s.name == duty.shift)
        others = [p for p in shift.rotation if p != duty.person.id]
        if not others:
            return None
        after = shift.rotation.index(duty.person.id) + 1
        ordered = shift.rotation[after:] + shift.rotation[:after]
        return self._people[next(p for p in ordered if p != duty.person.id)]

    def _duty(
        self, team: Team, person: str, shift: str | None, reason: str, end: datetime
    ) -> OnDuty:
        return OnDuty(
            team=team.id,
            community=team.community,
            building=team.building,
            person=self._people[person],
            shift=shift,
            reason=reason,
            until=end.astimezone(ZoneInfo("UTC")),
        )


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc
