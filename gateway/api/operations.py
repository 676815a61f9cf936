"""For operators: health, readiness, Prometheus metrics, dead letters and the audit log."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from gateway.api.context import AgentDesk, Disk, MetricsText
from gateway.api.errors import ERRORS, ErrorResponse
from gateway.api.schemas import DeadLetterView, IsoTime
from gateway.api.security import Caller, MaybeCaller, admin_only, audit, topic_visible
from gateway.audit import AuditLog, AuditRecord
from gateway.dead_letter_pages import LetterQuery, letters_page
from gateway.privacy import mask_payload, mask_text
from gateway.tokens import Role

router = APIRouter(tags=["operations"])


@router.get("/healthz", responses={401: {"model": ErrorResponse}, 429: {"model": ErrorResponse}})
async def healthz(
    desk: AgentDesk, disk: Disk, caller: MaybeCaller, request: Request
) -> dict[str, Any]:
    """Liveness: 200 while the process runs, `status` ok or degraded (a broker lost, a sink
    failing, the data dir's disk nearly full). What is wrong (broker, client ids, sinks and their
    hosts, the disk) only with an admin token: it maps the deployment."""
    health = await desk.health()
    ok = health["mqtt"]["connected"] and all(s["ok"] for s in health["sinks"].values())
    ok = ok and health.get("escalation", {}).get("ok", True)  # a step that reached nobody
    ok = ok and health.get("households", {}).get("problem") is None  # a register set aside
    # run --shards N: every sibling shard's own status (unreachable while it restarts)
    ok = ok and all(s.get("status") == "ok" for s in health.get("shards", {}).values())
    # the audit log, delivery log, phone book or short links found unreadable and started empty
    stored = [s.problem for s in request.app.state.stores if s.problem is not None]
    if stored:
        ok = False
        health["stores"] = {"problems": stored}
    if disk is not None:
        usage = disk.usage()
        warning = disk.warning(usage)
        ok = ok and warning is None
        health["disk"] = {
            "data_dir_bytes": usage.data_bytes,
            "free_bytes": usage.free_bytes,
            "total_bytes": usage.total_bytes,
            "warning": warning,
        }
    status = "ok" if ok else "degraded"
    if caller is None or caller.role is not Role.ADMIN:
        return {"status": status}
    return {"status": status, **health}


@router.get("/readyz", responses={503: {"model": ErrorResponse}})
async def readyz(desk: AgentDesk) -> JSONResponse:
    """200 when connected, sinks healthy and the outbox not backed up; 503 with reasons otherwise."""
    problems = await desk.readiness()
    if problems:
        return JSONResponse(status_code=503, content={"ready": False, "problems": problems})
    return JSONResponse(content={"ready": True, "problems": []})


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(render: MetricsText) -> str:
    """Prometheus text exposition."""
    return await render()


@router.get("/v1/dead-letters", responses=ERRORS)
async def list_dead_letters(
    caller: Caller,
    desk: AgentDesk,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    received_before: IsoTime | None = None,
) -> list[DeadLetterView]:
    """Messages that could not be decoded, newest first, with the reason (admin tokens only).

    Page with `before_id`, the last id of the page before. `received_before` (with `before_id`
    to break ties within its millisecond) lists those received earlier: how shard 0 continues a
    page of every shard's in each of them (`run --shards N`, where ids name their shard).
    A community admin sees those whose topic names one of its communities; payloads and
    reasons come with names and phone numbers masked (admins are not responders).
    """
    admin_only(caller)
    letters = await letters_page(
        desk.dead_letters,
        LetterQuery(limit, before_id, received_before),
        keep=lambda d: topic_visible(caller, desk, d.topic),
    )
    return [
        DeadLetterView(
            id=d.id or 0,
            topic=d.topic,
            cause=d.cause,
            detail=mask_text(d.detail),
            received_at=d.received_at,
            payload_base64=base64.b64encode(mask_payload(d.payload)).decode(),
        )
        for d in letters
    ]


@router.get("/v1/audit", responses=ERRORS)
async def list_audit(
    caller: Caller,
    request: Request,
    community: str | None = None,
    action: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> list[AuditRecord]:
    """The audit log, newest first (admin tokens only; read-only: nothing here writes it).

    A community admin reads the records of its communities only.
    """
    admin_only(caller)
    log: AuditLog | None = request.app.state.audit
    if log is None:
        return []
    if community is not None and not caller.may_see(community):
        audit(request, caller, community, f"community:{community}", "read_audit", "refused")
        return []
    scope = None if caller.all_communities else sorted(caller.communities)
    return log.query(
        limit=limit, before_id=before_id, community=community, action=action, communities=scope
    )
