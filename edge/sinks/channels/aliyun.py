"""Alibaba Cloud (阿里云) SMS and voice: SendSms and SingleCallByTts, RPC style, signature v1.

    POST https://dysmsapi.aliyuncs.com/   (SMS)    Action=SendSms, Version=2017-05-25
    POST https://dyvmsapi.aliyuncs.com/   (voice)  Action=SingleCallByTts, Version=2017-05-25
    Content-Type: application/x-www-form-urlencoded; the common parameters AccessKeyId, Format=JSON,
    SignatureMethod=HMAC-SHA1, SignatureVersion=1.0, SignatureNonce, Timestamp (UTC, ISO 8601),
    RegionId, and `Signature` = Base64(HMAC-SHA1(key=secret + "&", msg=StringToSign)) where
    StringToSign = "POST&%2F&" + percentEncode(the parameters sorted by name, percent-encoded as
    RFC 3986 with `~` kept, joined as k=v&k=v).

SendSms takes PhoneNumbers, SignName, TemplateCode, TemplateParam (JSON: level, summary, place,
time, link) and OutId (our reference); it answers `{"Code": "OK", "BizId": ...}`. SingleCallByTts
takes CalledNumber, TtsCode, TtsParam (JSON: level, summary, place), PlayTimes, OutId and the
optional CalledShowNumber; it answers `{"Code": "OK", "CallId": ...}`. Keys pressed come back in
the VoiceCallReport / VoiceReport receipts (`dtmf`, with our `out_id`), pushed by HTTP to the
gateway's callback route. Error codes come as `Code` (HTTP 200 or 4xx/5xx): a number Alibaba will
never reach is `SinkRejected` for that person; throttling (isv.BUSINESS_LIMIT_CONTROL,
Throttling*), a wrong key or signature, an empty balance and anything unknown are retried.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from datetime import UTC
from typing import ClassVar
from urllib.parse import quote, urlencode

from edge.clock import Clock, SystemClock
from edge.errors import SinkRejected, SinkUnavailable
from edge.sinks.channels.phone import Medium, PhoneMessage
from edge.sinks.channels.phone_http import ProviderClient
from edge.sinks.refusal import HTTP_TIMEOUT_S

SMS_ENDPOINT = "https://dysmsapi.aliyuncs.com"
VOICE_ENDPOINT = "https://dyvmsapi.aliyuncs.com"
VERSION = "2017-05-25"
# codes that say this number can never be reached: recorded for the person, not retried
NEVER_REACHABLE = frozenset({"isv.MOBILE_NUMBER_ILLEGAL", "isv.MOBILE_COUNT_OVER_LIMIT"})
VARIABLE_CHARS = 35  # Alibaba's cap on one template variable


def percent_encode(text: str) -> str:
    """RFC 3986 as Alibaba's RPC signature wants it: only A-Z a-z 0-9 - _ . ~ stay."""
    return quote(text, safe="~")


def rpc_signature(method: str, params: Mapping[str, str], secret: str) -> str:
    """The `Signature` parameter (signature version 1.0, HMAC-SHA1)."""
    canonical = "&".join(
        f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items())
    )
    to_sign = f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"
    mac = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


class _AliyunSender:
    """What SendSms and SingleCallByTts share: signing, posting, reading `Code`."""

    provider = "aliyun"
    medium: ClassVar[Medium]
    action: ClassVar[str]
    id_field: ClassVar[str]

    def __init__(
        self,
        name: str,
        access_key_id: str,
        access_key_secret: str,
        *,
        endpoint: str,
        region_id: str = "cn-hangzhou",
        timeout_s: float = HTTP_TIMEOUT_S,
        clock: Clock | None = None,
    ) -> None:
        self._key_id = access_key_id
        self._secret = access_key_secret
        self._region = region_id
        self._clock = clock or SystemClock()
        self._http = ProviderClient(
            f"aliyun {self.medium} {name}",
            endpoint.rstrip("/") + "/",
            timeout_s=timeout_s,
            secrets=[access_key_secret],
        )

    async def close(self) -> None:
        await self._http.close()

    def signed(self, params: Mapping[str, str]) -> dict[str, str]:
        """The request's parameters with the common ones and the signature."""
        common = {
            "AccessKeyId": self._key_id,
            "Action": self.action,
            "Format": "JSON",
            "RegionId": self._region,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": secrets.token_hex(16),
            "SignatureVersion": "1.0",
            "Timestamp": self._clock.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": VERSION,
        }
        all_params = {**common, **params}
        return {**all_params, "Signature": rpc_signature("POST", all_params, self._secret)}

    async def _call(self, params: Mapping[str, str]) -> str:
        body = urlencode(self.signed(params), quote_via=quote).encode()
        answer = await self._http.post(
            body, {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        )
        code = str(answer.get("Code", ""))
        if code == "OK":
            return str(answer.get(self.id_field) or "")
        message = self._http.redact(
            f"{self._http.where} answered {code or 'no Code'}: {answer.get('Message')}"
        )
        if code in NEVER_REACHABLE:
            raise SinkRejected(message)
        raise SinkUnavailable(message)


class AliyunSms(_AliyunSender):
    """SendSms with one approved template; the variables are the message's SMS fields."""

    medium = "sms"
    action = "SendSms"
    id_field = "BizId"

    def __init__(
        self,
        name: str,
        access_key_id: str,
        access_key_secret: str,
        *,
        sign_name: str,
        template_code: str,
        endpoint: str = SMS_ENDPOINT,
        region_id: str = "cn-hangzhou",
        timeout_s: float = HTTP_TIMEOUT_S,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(
            name,
            access_key_id,
            access_key_secret,
            endpoint=endpoint,
            region_id=region_id,
            timeout_s=timeout_s,
            clock=clock,
        )
        self.sign_name = sign_name
        self.template_code = template_code

    async def send(self, phone: str, message: PhoneMessage, ref: str) -> str:
        return await self._call(
            {
                "PhoneNumbers": national(phone),
                "SignName": self.sign_name,
                "TemplateCode": self.template_code,
                "TemplateParam": _json(message.fields("sms"), keep="link"),
                "OutId": ref,
            }
        )


class AliyunVoice(_AliyunSender):
    """SingleCallByTts with one approved TTS template that ends in "确认请按1"."""

    medium = "voice"
    action = "SingleCallByTts"
    id_field = "CallId"

    def __init__(
        self,
        name: str,
        access_key_id: str,
        access_key_secret: str,
        *,
        tts_code: str,
        called_show_number: str | None = None,
        play_times: int = 2,
        endpoint: str = VOICE_ENDPOINT,
        region_id: str = "cn-hangzhou",
        timeout_s: float = HTTP_TIMEOUT_S,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(
            name,
            access_key_id,
            access_key_secret,
            endpoint=endpoint,
            region_id=region_id,
            timeout_s=timeout_s,
            clock=clock,
        )
        self.tts_code = tts_code
        self.called_show_number = called_show_number
        self.play_times = play_times

    async def send(self, phone: str, message: PhoneMessage, ref: str) -> str:
        params = {
            "CalledNumber": national(phone),
            "TtsCode": self.tts_code,
            "TtsParam": _json(message.fields("voice")),
            "PlayTimes": str(self.play_times),
            "OutId": ref,
        }
        if self.called_show_number:
            params["CalledShowNumber"] = self.called_show_number
        return await self._call(params)


def national(phone: str) -> str:
    """A mainland number as Alibaba takes it: `+86 138...` and `86138...` as `138...`."""
    digits = "".join(c for c in phone if c.isdigit())
    return digits[2:] if len(digits) == 13 and digits.startswith("86") else digits


def _json(fields: Mapping[str, str], keep: str | None = None) -> str:
    clipped = {k: v if k == keep else v[:VARIABLE_CHARS] for k, v in fields.items()}
    return json.dumps(clipped, ensure_ascii=False, separators=(",", ":"))
