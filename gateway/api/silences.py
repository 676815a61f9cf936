"""Silences: hold back notifications of matching alerts (still recorded) for drills and
maintenance; list them, end one early.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import ValidationError

from edge.alerts import Silence, SilenceSpec
from edge.errors import SilenceNotFound
from edge.yaml_file import describe
from gateway.api.context import AgentDesk
from gateway.api.errors import ACTION_ERRORS, ERRORS
from gateway.api.schemas import PathId, SilenceList
from gateway.api.security import Caller, audit, may_act, visible
from gateway.api.untrusted_text import free_text, one_line

router = APIRouter(tags=["silences"])


@router.post("/v1/silences", status_code=201, responses=ERRORS)
async def create_silence(
    caller: Caller, request: Request, desk: AgentDesk, body: SilenceSpec
) -> Silence:
    """Hold back notifications of matching alerts (still recorded) over a span or window.

    A token scoped to some communities must name one of them; only a token of every
    community may silence across communities.
    """
    may_act(caller)
    _check_text(body)
    if body.community is None and not caller.all_communities:
        raise HTTPException(status_code=403, detail="name the community to silence")
    if body.community is not None:
        visible(request, caller, body.community, f"community:{body.community}")
    try:
        silence = desk.add_silence(body, caller.token_id)
    except ValidationError as exc:  # e.g. an end before the start (default start: now)
        raise HTTPException(status_code=422, detail=describe(exc)) from None
    audit(request, caller, body.community, f"silence:{silence.id}", "silence")
    return silence


def _check_text(spec: SilenceSpec) -> None:
    """422 for a reason or a matcher carrying control or bidi characters (shown to people)."""
    try:
        free_text(spec.reason)
        for ident in (spec.community, spec.building, spec.device_id, spec.rule):
            if ident is not None:
                one_line(ident)
                if len(ident) > 200:
                    raise ValueError("an id of more than 200 characters")
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=f"body: {exc}") from None


@router.get("/v1/silences", responses=ERRORS)
async def list_silences(
    caller: Caller,
    desk: AgentDesk,
    include_over: Annotated[bool, Query(alias="all")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> SilenceList:
    """Silences newest first: those not over yet, or with `all=true` every one."""
    current = None if include_over else desk.now()
    return SilenceList(
        items=[
            s
            for s in desk.silences(current, limit)
            if caller.all_communities or (s.community and caller.may_see(s.community))
        ]
    )


@router.delete("/v1/silences/{silence_id}", responses=ACTION_ERRORS)
async def expire_silence(
    silence_id: PathId, caller: Caller, request: Request, desk: AgentDesk
) -> Silence:
    """End a silence now (kept for the record); 409 if it is already over."""
    found = desk.silence(silence_id)
    if found is None:
        raise SilenceNotFound(f"no silence {silence_id!r}")
    if not caller.all_communities:
        visible(request, caller, found.community or "*", f"silence:{silence_id}")
    may_act(caller)
    silence = desk.expire_silence(silence_id, caller.token_id)
    audit(request, caller, found.community, f"silence:{silence_id}", "expire_silence")
    return silence
