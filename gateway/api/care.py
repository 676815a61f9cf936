"""A household's sign of life: what the rhythm rules learned of her day, whether she is away (and
until when), and a sign of life no sensor saw (a check-in call answered, a visit)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import AwareDatetime, BaseModel, Field

from edge.agent import Desk
from gateway.api.context import AgentDesk
from gateway.api.errors import ACTION_ERRORS, ERRORS
from gateway.api.schemas import PathId
from gateway.api.security import HouseholdCaller, audit, may_act, places_of, visible
from gateway.household_access import sees_household
from gateway.tokens import Principal, Role

router = APIRouter()


class OwnDay(BaseModel):
    """Her day, in local hours: `start` <= hour < `end`."""

    start: int = Field(ge=0, le=23)
    end: int = Field(ge=1, le=24)


class RuleRhythm(BaseModel):
    """What one sign-of-life rule learned of the household."""

    rule: str
    days_learned: int
    histogram: list[int] = Field(description="per local hour 0..23: days with a sign in it")
    usual_share: float = Field(description="days with any sign / days learned")
    own_day: OwnDay | None = Field(description="null: still learning, or no regular hour")
    watched: bool = Field(description="false: a rule for homes where the signal is usual, not")
    last_sign: AwareDatetime | None
    raised: bool = Field(description="its no-sign alert is open")


class HouseholdRhythmView(BaseModel):
    """A household's sign-of-life state."""

    away: bool
    away_until: AwareDatetime | None
    away_reason: str | None
    rules: list[RuleRhythm]


class SignBody(BaseModel):
    """Where a sign of life came from that no sensor saw."""

    source: Literal["check_in", "visit", "phone_call"] = "check_in"


class SignResult(BaseModel):
    resolved: int = Field(description="open no-sign alerts it resolved")
    at: datetime


def _household(
    request: Request, caller: Principal, desk: Desk, community: str, building: str, unit: str
) -> str:
    """The household's audit name; 404 for another community's, or for a care worker or family
    member, for a household not theirs (audited like the household routes do)."""
    household = f"household:{building}/{places_of(request).unit(community, building, unit)}"
    visible(request, caller, community, household)
    if caller.role in (Role.CARE_WORKER, Role.FAMILY):
        record = desk.households.get(f"{community}/{building}/{unit}")
        if record is None or not sees_household(caller, record):
            audit(request, caller, community, household, "not_own", "refused")
            raise HTTPException(
                status_code=404, detail=f"no household {community}/{building}/{unit}"
            )
    return household


@router.get(
    "/v1/households/{community}/{building}/{unit}/rhythm",
    tags=["households"],
    responses=ERRORS,
)
async def household_rhythm(
    caller: HouseholdCaller,
    request: Request,
    desk: AgentDesk,
    community: PathId,
    building: PathId,
    unit: PathId,
) -> HouseholdRhythmView:
    """The resident's own day as learned from the last weeks, and whether she is away.

    When she is at home is personal data: every read is in the audit log. A care worker and a
    family member read only their own households. `run --shards N`: from the shard that owns
    the building (503 while it does not answer).
    """
    household = _household(request, caller, desk, community, building, unit)
    away, until, reason = desk.away_of(community, building, unit)
    views = await desk.rhythm_of(community, building, unit)
    audit(request, caller, community, household, "read_rhythm")
    return HouseholdRhythmView(
        away=away,
        away_until=until,
        away_reason=reason,
        rules=[
            RuleRhythm(
                rule=v.rule,
                days_learned=v.days_learned,
                histogram=v.histogram,
                usual_share=v.usual_share,
                own_day=None
                if v.own_day is None
                else OwnDay(start=v.own_day.start, end=v.own_day.end),
                watched=v.watched,
                last_sign=v.last_sign,
                raised=v.raised,
            )
            for v in views
        ],
    )


@router.post(
    "/v1/households/{community}/{building}/{unit}/signs",
    tags=["households"],
    responses=ACTION_ERRORS,
)
async def sign_of_life(
    caller: HouseholdCaller,
    request: Request,
    desk: AgentDesk,
    community: PathId,
    building: PathId,
    unit: PathId,
    body: SignBody,
) -> SignResult:
    """Record a sign of life no sensor saw (a check-in call answered, a visit): the household's
    no-sign alerts resolve and inactivity counts anew from now. Responders, and a care worker
    for her own households."""
    household = _household(request, caller, desk, community, building, unit)
    if caller.role is not Role.CARE_WORKER:  # her own household, checked above
        may_act(caller)
    resolved = await desk.sign_of_life(community, building, unit)
    audit(request, caller, community, household, f"sign_of_life:{body.source}")
    return SignResult(resolved=resolved, at=desk.now())
