"""The SMS and voice providers' callbacks: a key pressed on a call acknowledges the alert as the
person called; delivery receipts land on the alert's delivery record.

    POST /callbacks/aliyun/<token>/voice   VoiceCallReport / VoiceReport, a JSON array
                                           ({call_id, out_id, status_code, dtmf, ...})
    POST /callbacks/aliyun/<token>/sms     SmsReport, a JSON array ({out_id, biz_id, success, ...})
    POST /callbacks/tencent/<token>/voice  {"voicekey_callback": {callid, keypress, mobile, ...}}
                                           or {"voiceprompt_callback": {callid, result, ...}}
    POST /callbacks/tencent/<token>/sms    a JSON array ({sid, mobile, report_status, ...})

Neither provider signs its callbacks, so what guards them is what the providers document as the
receiving side's part: a URL only they are given (`<token>`, settings `phone.callback_token`,
compared in constant time; a wrong one is a plain 404) and ids only they hold (our reference,
random 96 bits, sent as `OutId` / `SessionContext`, and their own call and message ids); a
Tencent key press must also come from the number that was called. A callback is matched to its
send in the phone book on disk, so one arriving after an agent restart still acknowledges the
right alert as the right person. Answers are what each provider expects
(`{"code": 0, "msg": "接收成功"}`, `{"result": 0, "errmsg": "OK"}`), also for a callback that
matches nothing (counted and logged: a retry could not match it either).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from edge.agent import Desk
from edge.errors import AlertNotFound, AlertTransitionError
from edge.sinks import DeliveryLog, DeliveryResult, PhoneBook, SendRecord
from gateway.api.context import AgentDesk
from gateway.audit import AuditLog

_log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

ACKNOWLEDGE_KEY = "1"
_KEY = "按键 keypad"  # the delivery record's row for a key press, apart from the call's receipt
# a Tencent key press with a call id the book lost (the agent stopped before it was written):
# the newest call to that number within this long is the one answered
MATCH_BY_NUMBER_WITHIN = timedelta(minutes=30)


@dataclass
class PhoneCallbacks:
    """What the callback routes need, and what they counted."""

    book: PhoneBook
    token: str
    deliveries: DeliveryLog | None
    acknowledged: int = 0  # alerts acknowledged by a key press
    receipts: int = 0  # delivery receipts recorded
    unmatched: int = 0  # callbacks naming no send in the book
    refused: int = 0  # callbacks to a wrong URL


@router.post("/callbacks/{provider}/{token}/{medium}")
async def callback(
    provider: str, token: str, medium: str, request: Request, desk: AgentDesk
) -> JSONResponse:
    hooks: PhoneCallbacks | None = getattr(request.app.state, "phone_callbacks", None)
    if (
        hooks is None
        or provider not in ("aliyun", "tencent")
        or medium not in ("sms", "voice")
        or not hmac.compare_digest(token.encode(), hooks.token.encode())
    ):
        if hooks is not None:
            hooks.refused += 1
        _log.warning("provider callback to an unknown URL (%s/…/%s) refused", provider, medium)
        return JSONResponse({"error": "not found"}, status_code=404)
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        _log.warning("%s %s callback: not JSON", provider, medium)
        return _answer(provider, ok=False, status=400)
    handle = _Handler(hooks, desk, request.app.state.audit, provider)
    if provider == "aliyun":
        for item in body if isinstance(body, list) else [body]:
            if isinstance(item, dict):
                await (handle.aliyun_voice(item) if medium == "voice" else handle.aliyun_sms(item))
    elif medium == "voice" and isinstance(body, dict):
        if isinstance(body.get("voicekey_callback"), dict):
            await handle.tencent_key(body["voicekey_callback"])
        if isinstance(body.get("voiceprompt_callback"), dict):
            await handle.tencent_call(body["voiceprompt_callback"])
    elif medium == "sms":
        for item in body if isinstance(body, list) else [body]:
            if isinstance(item, dict):
                await handle.tencent_sms(item)
    return _answer(provider, ok=True)


def _answer(provider: str, *, ok: bool, status: int = 200) -> JSONResponse:
    if provider == "aliyun":
        return JSONResponse(
            {"code": 0 if ok else 1, "msg": "接收成功" if ok else "无法解析"}, status
        )
    return JSONResponse({"result": 0 if ok else 1, "errmsg": "OK" if ok else "bad body"}, status)


class _Handler:
    def __init__(
        self, hooks: PhoneCallbacks, desk: Desk, audit: AuditLog | None, provider: str
    ) -> None:
        self.hooks = hooks
        self.desk = desk
        self.audit = audit
        self.provider = provider

    # -- Alibaba Cloud -------------------------------------------------------------------------

    async def aliyun_voice(self, item: dict[str, Any]) -> None:
        record = await self._find(_text(item, "out_id"), _text(item, "call_id"), "voice")
        if record is None:
            return
        dtmf = _text(item, "dtmf") or ""
        if dtmf.strip().startswith(ACKNOWLEDGE_KEY):
            await self._acknowledge(record, f"pressed {dtmf.strip()[:8]}")
        status = _text(item, "status_code") or "?"
        smart = _text(item, "smart_status_code")
        answered = smart == "ANSWERED" or bool(_text(item, "start_time")) or bool(dtmf)
        detail = " ".join(
            p
            for p in (
                f"status {status}",
                smart or "",
                _text(item, "status_msg") or "",
                f"dtmf {dtmf}" if dtmf else "",
            )
            if p
        )
        await self._receipt(
            record, answered, ("接听 answered" if answered else "未接通") + f": {detail}"
        )

    async def aliyun_sms(self, item: dict[str, Any]) -> None:
        record = await self._find(_text(item, "out_id"), _text(item, "biz_id"), "sms")
        if record is None:
            return
        success = item.get("success") is True
        detail = f"{_text(item, 'err_code') or '?'} {_text(item, 'err_msg') or ''}".strip()
        await self._receipt(
            record, success, ("送达 delivered" if success else "未送达") + f": {detail}"
        )

    # -- Tencent Cloud -------------------------------------------------------------------------

    async def tencent_key(self, item: dict[str, Any]) -> None:
        mobile = _text(item, "mobile") or ""
        record = await self._find(None, _text(item, "callid"), "voice", mobile=mobile)
        if record is None:
            return
        if not await asyncio.to_thread(self.hooks.book.matches_phone, record, mobile):
            self.hooks.unmatched += 1
            _log.warning("tencent key press for call %s from another number: ignored", record.ref)
            return
        keypress = (_text(item, "keypress") or "").strip()
        if keypress == ACKNOWLEDGE_KEY:
            await self._acknowledge(record, f"pressed {keypress}")
        else:
            await self._receipt(record, True, f"pressed {keypress[:8]} (not 1)", _KEY)

    async def tencent_call(self, item: dict[str, Any]) -> None:
        record = await self._find(None, _text(item, "callid"), "voice")
        if record is None:
            return
        result = _text(item, "result")
        text = {"0": "接听 answered", "1": "未接听 not answered", "2": "呼叫异常 call failed"}
        await self._receipt(record, result == "0", text.get(result or "", f"result {result}"))

    async def tencent_sms(self, item: dict[str, Any]) -> None:
        record = await self._find(None, _text(item, "sid"), "sms")
        if record is None:
            return
        status = _text(item, "report_status") or "?"
        detail = f"{_text(item, 'errmsg') or ''} {_text(item, 'description') or ''}".strip()
        ok = status == "SUCCESS"
        await self._receipt(record, ok, ("送达 delivered" if ok else "未送达") + f": {detail}")

    # -- shared --------------------------------------------------------------------------------

    async def _find(
        self, ref: str | None, provider_id: str | None, medium: str, mobile: str | None = None
    ) -> SendRecord | None:
        book = self.hooks.book
        record = None
        if ref:
            record = await asyncio.to_thread(book.by_ref, ref)
        if record is None and provider_id:
            record = await asyncio.to_thread(book.by_provider_id, self.provider, provider_id)
        if record is None and mobile:
            now = self.desk.now()
            record = await asyncio.to_thread(
                book.latest_to, self.provider, medium, mobile, now, MATCH_BY_NUMBER_WITHIN
            )
        if record is None or record.provider != self.provider or record.medium != medium:
            self.hooks.unmatched += 1
            _log.warning(
                "%s %s callback names no send of ours (ref %s, id %s): ignored",
                self.provider,
                medium,
                ref,
                provider_id,
            )
            return None
        return record

    async def _acknowledge(self, record: SendRecord, how: str) -> None:
        if not record.alert_id:  # a flood's summary call names no alert: nothing to take
            _log.info("%s on a summary call (%s): acknowledges nothing", how, record.ref)
            return
        note = f"电话按键确认 {how} ({self.provider} {record.medium}, {record.channel})"
        try:
            alert = await self.desk.acknowledge(record.alert_id, record.person_name, note)
        except AlertTransitionError:
            current = self.desk.alert(record.alert_id)
            by = current.acknowledged_by or current.resolved_by if current else None
            await self._receipt(record, True, f"{how}: already handled by {by or 'someone'}", _KEY)
            return
        except AlertNotFound:
            await self._receipt(record, True, f"{how}: alert no longer open", _KEY)
            return
        self.hooks.acknowledged += 1
        _log.info(
            "alert %s acknowledged by %s (%s) %s on a %s call",
            alert.id,
            record.person_name,
            record.person_id,
            how,
            self.provider,
        )
        if self.audit is not None:
            self.audit.record(
                actor=f"person:{record.person_id}",
                role="phone_keypad",
                community=alert.community,
                object=f"alert:{alert.id}",
                action="keypad_acknowledge",
                result="ok",
                request_id=uuid.uuid4().hex,
            )
        await self._receipt(
            record, True, f"{how}: 已确认 acknowledged as {record.person_name}", _KEY
        )

    async def _receipt(
        self, record: SendRecord, ok: bool, text: str, what: str = "回执 receipt"
    ) -> None:
        """On the alert's delivery record as `<channel> → <person> <what>`: the call's record
        and its key press are two rows, each provider retry of one adds to its row's count."""
        self.hooks.receipts += 1
        if self.hooks.deliveries is None or not record.alert_id:  # a summary is on no alert
            return
        await self.hooks.deliveries.record_one(
            f"{record.channel} → {record.person_id} {what}",
            event_id=record.event_id,
            alert_id=record.alert_id,
            kind=record.event_kind,
            result=DeliveryResult.DELIVERED if ok else DeliveryResult.FAILED,
            reason=f"{record.phone_masked} {text}",
        )


def _text(item: dict[str, Any], key: str) -> str | None:
    value = item.get(key)
    return None if value is None else str(value)
