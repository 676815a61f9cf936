"""Action links (`/a/<token>`): a small confirmation page that needs no sign-in, and the button on
it that acts. GET never changes anything (link previews and mail scanners open links on their
own); POST acknowledges, says "on my way" or resolves, as the person the link was signed for.
"""

from __future__ import annotations

import html
import uuid
from datetime import UTC, datetime, tzinfo
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from edge.agent import Desk
from edge.errors import AlertNotFound, AlertTransitionError
from edge.model import Alert
from gateway.action_links import ActionLinks, LinkAction, LinkClaim, LinkRefused
from gateway.api.context import AgentDesk
from gateway.audit import AuditLog

router = APIRouter(include_in_schema=False)

# a page with no script at all: nothing to inject into, nothing to run
_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
_VERBS = {
    LinkAction.ACKNOWLEDGE: ("确认接警", "Acknowledge"),
    LinkAction.ON_MY_WAY: ("我正在赶往现场", "On my way"),
    LinkAction.RESOLVE: ("已处理完毕", "Resolve"),
}
_REFUSALS = {
    "altered": (404, "链接无效", "This link is not valid."),
    "expired": (410, "链接已过期", "This link has expired."),
    "used": (409, "链接已使用过", "This link has already been used."),
}
_SEVERITY = {"critical": "紧急 critical", "major": "重要 major", "minor": "一般 minor"}
_STATUS = {
    "active": "待确认 active",
    "acknowledged": "已确认 acknowledged",
    "resolved": "已解除 resolved",
}
_ZONE = ZoneInfo("Asia/Shanghai")  # as the console's, when the gateway names no community zone


@router.get("/a/{token}", response_class=HTMLResponse)
async def confirm(token: str, request: Request, desk: AgentDesk) -> HTMLResponse:
    """The confirmation page: what the link will do, to which alert, as whom. Changes nothing."""
    try:
        claim = _links(request).verify(token, datetime.now(UTC))
    except LinkRefused as refused:
        return _refusal(refused)
    alert = desk.alert(claim.alert_id)
    if alert is None:
        return _refusal(LinkRefused("altered", "no such alert"))
    zh, en = _VERBS[claim.action]
    body = (
        f"{_alert_block(request, alert)}"
        f"<p>您将以 <b>{_e(claim.person_name)}</b> 的身份操作。<br>"
        f"<span lang=en>You act as <b>{_e(claim.person_name)}</b>.</span></p>"
        f'<form method="post" action="/a/{_e(token)}">'
        f'<button type="submit">{zh} <span lang=en>{en}</span></button></form>'
    )
    return _page(200, f"{zh} · {en}", body)


@router.post("/a/{token}", response_class=HTMLResponse)
async def act(token: str, request: Request, desk: AgentDesk) -> HTMLResponse:
    """Use the link once: the action is recorded under the person's name."""
    try:
        claim = _links(request).consume(token, datetime.now(UTC))
    except LinkRefused as refused:
        return _refusal(refused)
    try:
        alert = await _carry_out(desk, claim)
    except AlertNotFound:
        return _refusal(LinkRefused("altered", "no such alert"))
    except AlertTransitionError:
        current = desk.alert(claim.alert_id)
        by = (current.resolved_by or current.acknowledged_by) if current else None
        who = _e(by) if by else ""
        zh = f"此警报已由 {who} 处理。" if who else "此警报已有人处理。"
        en = f"This alert was already handled by {who}." if who else "Already handled."
        return _page(
            409,
            "已有人处理 · Already handled",
            f"{_alert_block(request, current) if current else ''}<p>{zh}<br><span lang=en>{en}</span></p>",
        )
    _record(request, claim, alert)
    zh, en = _VERBS[claim.action]
    return _page(
        200,
        f"已完成 · Done: {en}",
        f"{_alert_block(request, alert)}<p>✔ {zh}:{_e(claim.person_name)}<br>"
        f"<span lang=en>{en}: {_e(claim.person_name)}</span></p>",
    )


async def _carry_out(desk: Desk, claim: LinkClaim) -> Alert:
    actor = claim.person_name
    if claim.action is LinkAction.ACKNOWLEDGE:
        return await desk.acknowledge(claim.alert_id, actor, "action link")
    if claim.action is LinkAction.RESOLVE:
        return await desk.resolve(claim.alert_id, actor, "action link")
    alert = await desk.assign(claim.alert_id, actor, actor, "on my way / 正在赶往现场")
    if alert.status == "active":
        alert = await desk.acknowledge(claim.alert_id, actor, "on my way / 正在赶往现场")
    return alert


def _links(request: Request) -> ActionLinks:
    links: ActionLinks | None = request.app.state.action_links
    if links is None:  # an app built without a data dir (tests of other routes)
        raise LinkRefused("altered", "action links are off")
    return links


def _record(request: Request, claim: LinkClaim, alert: Alert) -> None:
    audit: AuditLog | None = request.app.state.audit
    if audit is not None:
        audit.record(
            actor=f"person:{claim.person_id}",
            role="action_link",
            community=alert.community,
            object=f"alert:{alert.id}",
            action=f"link_{claim.action.value}",
            result="ok",
            request_id=uuid.uuid4().hex,  # no bearer dependency here to have given one
        )


def _opened(request: Request, alert: Alert) -> str:
    """When the alert opened, in the community's time zone like the rest of the console, with
    its offset: a link may be opened on a phone set to any zone."""
    zone: tzinfo = getattr(request.app.state, "zone", None) or _ZONE
    local = alert.opened_at.astimezone(zone)
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M:%S} (UTC{offset[:3]}:{offset[3:]})"


def _summary(request: Request, alert: Alert) -> str:
    """The rule's Chinese line first, then the stored (English) summary."""
    desk = getattr(request.app.state, "desk", None)
    rule = desk.rule(alert.model, alert.rule, alert.device_id) if isinstance(desk, Desk) else None
    zh = rule.summary_zh if rule is not None else None
    if zh is None or zh == alert.summary:
        return _e(alert.summary)
    return f"{_e(zh)}<br><span lang=en>{_e(alert.summary)}</span>"


def _alert_block(request: Request, alert: Alert) -> str:
    # no unit and no resident: whoever holds the link sees the building, not the home
    severity = _SEVERITY.get(alert.severity.value, alert.severity.value)
    opened = _opened(request, alert)
    return (
        f"<h2>{_summary(request, alert)}</h2><dl>"
        f"<dt>级别 Severity</dt><dd>{_e(severity)}</dd>"
        f"<dt>位置 Place</dt><dd>{_e(alert.community)} / {_e(alert.building)}</dd>"
        f"<dt>设备 Device</dt><dd>{_e(alert.model)} {_e(alert.device_id)}</dd>"
        f"<dt>时间 Opened</dt><dd>{opened}</dd>"
        f"<dt>状态 Status</dt><dd>{_e(_STATUS.get(alert.status.value, alert.status.value))}</dd></dl>"
        # the whole story (timeline, notes, other actions) is on the console's page, after sign-in
        f'<p><a href="/console/alerts/{quote(alert.id, safe="")}">在值班台查看 · '
        f"<span lang=en>Open in the duty console</span></a></p>"
    )


def _refusal(refused: LinkRefused) -> HTMLResponse:
    status, zh, en = _REFUSALS.get(refused.reason, _REFUSALS["altered"])
    return _page(status, f"{zh} · {en}", f"<p>{zh}<br><span lang=en>{en}</span></p>")


def _page(status: int, title: str, body: str) -> HTMLResponse:
    page = (
        "<!doctype html><html lang=zh-CN><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>"
        "body{font:18px/1.5 system-ui,'Noto Sans CJK SC',sans-serif;margin:1.5rem;max-width:36rem;"
        "color:#111;background:#fff}dt{font-weight:600}dd{margin:0 0 .5rem}"
        "button{font-size:1.25rem;padding:.75rem 1.5rem;min-height:48px;border:2px solid #111;"
        "background:#0b5cad;color:#fff;border-radius:6px;width:100%}"
        f"</style></head><body><h1>{_e(title)}</h1>{body}</body></html>"
    )
    headers = {
        "Content-Security-Policy": _CSP,
        "Cache-Control": "no-store",  # a link's page is about one moment; never from a cache
        "Referrer-Policy": "no-referrer",  # the token must not leak to another site
        "X-Content-Type-Options": "nosniff",
    }
    return HTMLResponse(page, status_code=status, headers=headers)


def _e(text: str) -> str:
    return html.escape(text, quote=True)
