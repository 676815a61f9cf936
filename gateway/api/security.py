"""Who calls, and what they may see: the bearer-token dependency of both alert APIs, with the brake
on failed authentications, the tenancy checks (404 for another community's object, audited) and
the masking of the unit for callers who are not responders.
"""

from __future__ import annotations

import math
import re
import secrets
import uuid
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from edge.agent import Desk
from edge.alerts import Incident
from edge.model import Alert, AlertEvent
from gateway.audit import AuditLog
from gateway.audit import Result as AuditResult
from gateway.auth import ACTORS, Authenticator, Throttled, Unauthenticated
from gateway.privacy import Pseudonyms, sees_personal_data
from gateway.tokens import PERSONAL_ROLES, Principal, Role, TokenStore

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_bearer = HTTPBearer(auto_error=False)


def authenticated(
    request: Request,
    response: Response,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller behind the bearer token (app.state.authenticator); 401, or 429 when braked."""
    given = request.headers.get("x-request-id", "")
    request.state.request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
    response.headers["X-Request-Id"] = request.state.request_id
    client = request.client.host if request.client else "unknown"
    authenticator: Authenticator = request.app.state.authenticator
    try:
        return authenticator.authenticate(credentials.credentials if credentials else None, client)
    except Throttled as exc:
        raise HTTPException(
            status_code=429,
            detail="too many failed authentications from this address or for this token; try again later",
            headers={"Retry-After": str(math.ceil(exc.retry_after_s))},
        ) from None
    except Unauthenticated as exc:
        raise HTTPException(
            status_code=401, detail=str(exc), headers={"WWW-Authenticate": "Bearer"}
        ) from None


def optional_caller(request: Request, response: Response) -> Principal | None:
    """The caller when a bearer token is given (checked, braked and refused like anywhere), None
    when none is: for the routes that answer everyone a little and admins more (/healthz).

    The header is read here rather than through the bearer scheme, so the OpenAPI document does
    not mark the route as needing a token: it does not.
    """
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    credentials = (
        HTTPAuthorizationCredentials(scheme=scheme, credentials=token.strip())
        if scheme.lower() == "bearer" and token.strip()
        else None
    )
    return authenticated(request, response, credentials)


MaybeCaller = Annotated[Principal | None, Depends(optional_caller)]


def reader(principal: Annotated[Principal, Depends(authenticated)]) -> Principal:
    """Any caller but an edge agent, whose token only posts alert events to a central API, and
    the people of the care work, who read only their own households (`household_reader`)."""
    if principal.role is Role.EDGE_AGENT:
        raise HTTPException(
            status_code=403, detail="an edge_agent token only posts alert events to a central API"
        )
    if principal.role in PERSONAL_ROLES:
        raise HTTPException(
            status_code=403,
            detail=f"a {principal.role.value} token reads only its own households "
            "(/v1/households, /v1/visits)",
        )
    return principal


def household_reader(principal: Annotated[Principal, Depends(authenticated)]) -> Principal:
    """Any caller but an edge agent, care workers and family members included: the household
    routes narrow those to their own households (gateway/api/households.py)."""
    if principal.role is Role.EDGE_AGENT:
        raise HTTPException(
            status_code=403, detail="an edge_agent token only posts alert events to a central API"
        )
    return principal


# every /v1 route takes its caller from one of these: a route without it is refused by
# tests/test_tenancy.py, which walks every route with another community's token
Caller = Annotated[Principal, Depends(reader)]
Poster = Annotated[Principal, Depends(authenticated)]
HouseholdCaller = Annotated[Principal, Depends(household_reader)]


def audit(
    request: Request,
    caller: Principal,
    community: str | None,
    obj: str,
    action: str,
    result: AuditResult = "ok",
) -> None:
    """Record an action, a personal-data read or a refusal in app.state.audit (if kept)."""
    log: AuditLog | None = request.app.state.audit
    if log is not None:
        log.record(
            actor=caller.token_id,
            role=caller.role.value,
            community=community,
            object=obj,
            action=action,
            result=result,
            request_id=request.state.request_id,
        )


def visible(request: Request, caller: Principal, community: str, obj: str) -> None:
    """404 (not 403: ids do not leak) for another community's object; the attempt is audited."""
    if not caller.may_see(community):
        audit(request, caller, community, obj, "cross_tenant", "refused")
        kind, _, ident = obj.partition(":")
        raise HTTPException(status_code=404, detail=f"no {kind} {ident!r}")


def may_act(caller: Principal) -> None:
    """403 for a role that only reads (platform)."""
    if caller.role not in ACTORS:
        raise HTTPException(
            status_code=403, detail=f"a {caller.role} token may read, not act on alerts"
        )


def admin_only(caller: Principal) -> None:
    if caller.role != Role.ADMIN:
        raise HTTPException(status_code=403, detail="for admin tokens only")


def topic_visible(caller: Principal, desk: Desk, topic: str) -> bool:
    """A raw message's topic is within the caller's communities (one naming none: all only)."""
    if caller.all_communities:
        return True
    community = desk.community_of_topic(topic)
    return community is not None and caller.may_see(community)


def places_of(request: Request) -> Pseudonyms:
    """The unit pseudonyms of this deployment (create_app, create_central_app put them on
    app.state)."""
    places: Pseudonyms = request.app.state.pseudonyms
    return places


Places = Annotated[Pseudonyms, Depends(places_of)]


def pseudonyms_of(tokens: TokenStore | None) -> Pseudonyms:
    """The deployment's pseudonyms: keyed in tokens.db (stable across restarts), or, without a
    token store, by a key of this process."""
    return Pseudonyms(tokens.secret("unit-pseudonyms") if tokens else secrets.token_bytes(32))


def masked(caller: Principal, alert: Alert, places: Pseudonyms) -> Alert:
    """The unit (where a resident lives) only for responders of the alert's community; for the
    others it is gone from the `unit` field and pseudonymous in the device id and key."""
    if alert.unit is None or sees_personal_data(caller, alert.community):
        return alert
    return places.alert(alert.model_copy(update={"unit": None}))


def masked_event(caller: Principal, event: AlertEvent, places: Pseudonyms) -> AlertEvent:
    alert = masked(caller, event.alert, places)
    return event if alert is event.alert else event.model_copy(update={"alert": alert})


def masked_incident(caller: Principal, incident: Incident, places: Pseudonyms) -> Incident:
    """An incident's device list with households pseudonymous, for all but its responders."""
    if sees_personal_data(caller, incident.community):
        return incident
    return places.incident(incident)
