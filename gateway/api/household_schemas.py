"""Request and response bodies of the household and visit routes (gateway/api/households.py).

Views carry no patterns of their own: a masked phone (138****5678) is a valid answer, never a
valid input. Inputs are the edge models (`Household`, `VisitSpec`), validated as they are stored.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from edge.enrich import CareLevel, Condition, Household, VisitStatus
from edge.model import Alert
from gateway.api.untrusted_text import free_text, one_line
from gateway.households_csv import text_problems


class ResidentView(BaseModel):
    name: str
    phone: str | None
    birth_year: int | None


class FamilyView(BaseModel):
    name: str
    relation: str
    phone: str
    call_after_minutes: int | None
    person_id: str | None


class CareWorkerView(BaseModel):
    person_id: str
    name: str
    phone: str | None


class HouseholdView(BaseModel):
    """A household as the caller may see it: `masked` says whether personal data is hidden."""

    id: str  # community/building/unit (the unit a pseudonym when masked)
    community: str
    building: str
    floor: str | None
    unit: str
    residents: list[ResidentView]
    living_alone: bool
    care_level: CareLevel
    device_ids: list[str]
    family: list[FamilyView]
    care_worker: CareWorkerView | None
    away: bool  # away now: by its end date, or by the away flag (PUT .../away)
    away_until: AwareDatetime | None
    away_reason: str | None
    note: str | None
    updated_at: AwareDatetime | None
    revision: int
    masked: bool

    @classmethod
    def of(cls, household: Household, *, away: bool, masked: bool) -> HouseholdView:
        return cls(
            **household.model_dump(exclude={"residents", "family", "care_worker"}),
            id=household.id,
            residents=[ResidentView(**r.model_dump()) for r in household.residents],
            family=[FamilyView(**f.model_dump()) for f in household.family],
            care_worker=CareWorkerView(**household.care_worker.model_dump())
            if household.care_worker
            else None,
            away=away,
            masked=masked,
        )


class HouseholdList(BaseModel):
    items: list[HouseholdView]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null on the last page"
    )


class VisitView(BaseModel):
    id: str
    household: str
    worker: str
    worker_name: str
    at: AwareDatetime
    condition: Condition
    note: str
    follow_up: bool
    alert_id: str | None
    recorded_at: AwareDatetime


class HouseholdDetail(HouseholdView):
    """One household with its open alerts, its latest visits and this month's visit status."""

    open_alerts: list[Alert]
    visits: list[VisitView]
    visit_status: VisitStatus | None  # None: no care worker, so no visits are due


# a view's read-only fields: accepted in a body (what a GET answered, sent back changed), ignored
_READ_ONLY = ("id", "away", "masked", "open_alerts", "visits", "visit_status")


class HouseholdBody(Household):
    """A household to store: the record's fields. `revision`, when not 0, must be the one read
    (409 if someone changed it since). A masked copy (`masked: true`) is refused: storing it
    would overwrite names and phones with their masks."""

    @model_validator(mode="before")
    @classmethod
    def _drop_read_only(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if data.get("masked") is True:
            raise ValueError("a masked copy of a household cannot be stored")
        return {k: v for k, v in data.items() if k not in _READ_ONLY}

    @model_validator(mode="after")
    def _readable(self) -> HouseholdBody:
        found = text_problems(self)
        if found:
            where, problem = found[0]
            raise ValueError(f"{where}: {problem}")
        return self

    def record(self) -> Household:
        return Household.model_validate(self.model_dump())


class VisitBody(BaseModel):
    """A visit as a care worker records it; `at` defaults to now. `visitor_name`: who visited,
    when the office records a visit for someone else (default: the household's care worker when
    she records it herself, else the token's name)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    at: AwareDatetime | None = None
    visitor_name: Annotated[str, AfterValidator(one_line)] | None = Field(
        default=None, min_length=1, max_length=64
    )
    condition: Condition
    note: Annotated[str, AfterValidator(free_text)] = Field(default="", max_length=500)
    follow_up: bool = False
    alert_id: str | None = Field(default=None, max_length=128)


class VisitList(BaseModel):
    items: list[VisitView]


class DueHousehold(BaseModel):
    """One household in a worker's month of visits."""

    household: str
    community: str
    building: str
    unit: str
    resident: str | None  # the first resident's name, masked unless the caller sees it in full
    care_worker: str | None
    status: VisitStatus
    visits_this_month: int
    last_visit_at: AwareDatetime | None


class DueList(BaseModel):
    month_start: AwareDatetime
    visited: int
    due: int
    overdue: int
    items: list[DueHousehold]


class ImportProblem(BaseModel):
    line: int
    column: str
    problem: str


class ImportReport(BaseModel):
    """What an import did: all lines stored, or none (then `problems` says why, by line)."""

    imported: int
    problems: list[ImportProblem]
