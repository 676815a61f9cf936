"""Tencent Cloud (腾讯云) SMS and voice notification: SendSms and SendTtsVoice, signed TC3-HMAC-SHA256.

    POST https://sms.tencentcloudapi.com/  X-TC-Action: SendSms       X-TC-Version: 2021-01-11
    POST https://vms.tencentcloudapi.com/  X-TC-Action: SendTtsVoice  X-TC-Version: 2020-09-02
    Content-Type: application/json; charset=utf-8, X-TC-Timestamp, X-TC-Region, and
    Authorization: TC3-HMAC-SHA256 Credential=<SecretId>/<date>/<service>/tc3_request,
                   SignedHeaders=content-type;host, Signature=<hex>

where the canonical request is "POST\\n/\\n\\ncontent-type:<ct>\\nhost:<host>\\n\\ncontent-type;host\\n"
+ hex(SHA-256(body)), the string to sign "TC3-HMAC-SHA256\\n<timestamp>\\n<date>/<service>/
tc3_request\\n" + hex(SHA-256(canonical request)), and the key is derived as HMAC-SHA256 of the
date under "TC3" + SecretKey, then of the service, then of "tc3_request" (date: UTC, YYYY-MM-DD).

SendSms takes PhoneNumberSet (E.164), SmsSdkAppId, SignName, TemplateId, TemplateParamSet (level,
summary, place, time, link as {1}..{5}) and SessionContext (our reference); each number's
`SendStatusSet` entry has `Code` "Ok" and a `SerialNo`. SendTtsVoice takes CalledNumber,
VoiceSdkAppid, TemplateId, TemplateParamSet (level, summary, place), PlayTimes and SessionContext;
it answers `SendStatus.CallId`. Keys pressed come back by the voice callback
(`voicekey_callback.keypress` with the `callid`). A request error is `Response.Error.Code`: a wrong
or unreachable number is `SinkRejected` for that person; a number's daily cap too (it will not be
reached today, and must not hold up the channel); rate limits, signature, credential, balance and
anything unknown are retried.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

from edge.clock import Clock, SystemClock
from edge.errors import SinkRejected, SinkUnavailable
from edge.sinks.channels.phone import Medium, PhoneMessage
from edge.sinks.channels.phone_http import ProviderClient
from edge.sinks.refusal import HTTP_TIMEOUT_S

SMS_ENDPOINT = "https://sms.tencentcloudapi.com"
VOICE_ENDPOINT = "https://vms.tencentcloudapi.com"
CONTENT_TYPE = "application/json; charset=utf-8"
NEVER_REACHABLE = frozenset(
    {
        "InvalidParameterValue.IncorrectPhoneNumber",
        "UnsupportedOperation.UnsupportedRegion",
        "LimitExceeded.PhoneNumberDailyLimit",
        "FailedOperation.PhoneNumberInBlacklist",
        "FailedOperation.ParameterError",  # VMS: the number is malformed
    }
)


def tc3_authorization(
    secret_id: str,
    secret_key: str,
    *,
    service: str,
    host: str,
    timestamp: int,
    body: bytes,
    content_type: str = CONTENT_TYPE,
) -> str:
    """The `Authorization` header of one POST / request."""
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    canonical = "\n".join(
        [
            "POST",
            "/",
            "",
            f"content-type:{content_type}\nhost:{host}\n",
            "content-type;host",
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{date}/{service}/tc3_request"
    to_sign = "\n".join(
        [
            "TC3-HMAC-SHA256",
            str(timestamp),
            scope,
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    key = _hmac(f"TC3{secret_key}".encode(), date)
    key = _hmac(key, service)
    key = _hmac(key, "tc3_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, "
        f"SignedHeaders=content-type;host, Signature={signature}"
    )


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def e164(phone: str) -> str:
    """`+8613812345678`: a number given without a country code is a mainland one."""
    digits = "".join(c for c in phone if c.isdigit())
    if phone.strip().startswith("+"):
        return f"+{digits}"
    return f"+86{digits}" if len(digits) == 11 else f"+{digits}"


class _TencentSender:
    provider = "tencent"
    medium: ClassVar[Medium]
    action: ClassVar[str]
    version: ClassVar[str]
    service: ClassVar[str]

    def __init__(
        self,
        name: str,
        secret_id: str,
        secret_key: str,
        *,
        endpoint: str,
        region: str = "ap-guangzhou",
        timeout_s: float = HTTP_TIMEOUT_S,
        clock: Clock | None = None,
    ) -> None:
        self._id = secret_id
        self._key = secret_key
        self._region = region
        self._clock = clock or SystemClock()
        self._host = urlsplit(endpoint).netloc
        self._http = ProviderClient(
            f"tencent {self.medium} {name}",
            endpoint.rstrip("/") + "/",
            timeout_s=timeout_s,
            secrets=[secret_key],
        )

    async def close(self) -> None:
        await self._http.close()

    async def _call(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = int(self._clock.now().timestamp())
        headers = {
            "Content-Type": CONTENT_TYPE,
            "Host": self._host,
            "X-TC-Action": self.action,
            "X-TC-Version": self.version,
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Region": self._region,
            "Authorization": tc3_authorization(
                self._id,
                self._key,
                service=self.service,
                host=self._host,
                timestamp=timestamp,
                body=body,
            ),
        }
        answer = await self._http.post(body, headers)
        response = answer.get("Response")
        if not isinstance(response, dict):
            raise SinkUnavailable(f"{self._http.where} answered without a Response")
        error = response.get("Error")
        if isinstance(error, dict):
            self._fail(str(error.get("Code")), str(error.get("Message")))
        return response

    def _fail(self, code: str, message: str) -> None:
        text = self._http.redact(f"{self._http.where} answered {code}: {message}")
        if code in NEVER_REACHABLE:
            raise SinkRejected(text)
        raise SinkUnavailable(text)


class TencentSms(_TencentSender):
    """SendSms with one approved template; TemplateParamSet is level, summary, place, time, link."""

    medium = "sms"
    action = "SendSms"
    version = "2021-01-11"
    service = "sms"

    def __init__(
        self,
        name: str,
        secret_id: str,
        secret_key: str,
        *,
        sdk_app_id: str,
        sign_name: str,
        template_id: str,
        endpoint: str = SMS_ENDPOINT,
        region: str = "ap-guangzhou",
        timeout_s: float = HTTP_TIMEOUT_S,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(
            name,
            secret_id,
            secret_key,
            endpoint=endpoint,
            region=region,
            timeout_s=timeout_s,
            clock=clock,
        )
        self.sdk_app_id = sdk_app_id
        self.sign_name = sign_name
        self.template_id = template_id

    async def send(self, phone: str, message: PhoneMessage, ref: str) -> str:
        response = await self._call(
            {
                "PhoneNumberSet": [e164(phone)],
                "SmsSdkAppId": self.sdk_app_id,
                "SignName": self.sign_name,
                "TemplateId": self.template_id,
                "TemplateParamSet": list(message.fields("sms").values()),
                "SessionContext": ref,
            }
        )
        statuses = response.get("SendStatusSet")
        if not isinstance(statuses, list) or not statuses or not isinstance(statuses[0], dict):
            raise SinkUnavailable(f"{self._http.where} answered without a SendStatusSet")
        status = statuses[0]
        if status.get("Code") != "Ok":
            self._fail(str(status.get("Code")), str(status.get("Message")))
        return str(status.get("SerialNo") or "")


class TencentVoice(_TencentSender):
    """SendTtsVoice (语音通知) with a template that ends in "确认请按1" and keypad feedback on."""

    medium = "voice"
    action = "SendTtsVoice"
    version = "2020-09-02"
    service = "vms"

    def __init__(
        self,
        name: str,
        secret_id: str,
        secret_key: str,
        *,
        voice_sdk_app_id: str,
        template_id: str,
        play_times: int = 2,
        endpoint: str = VOICE_ENDPOINT,
        region: str = "ap-guangzhou",
        timeout_s: float = HTTP_TIMEOUT_S,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(
            name,
            secret_id,
            secret_key,
            endpoint=endpoint,
            region=region,
            timeout_s=timeout_s,
            clock=clock,
        )
        self.voice_sdk_app_id = voice_sdk_app_id
        self.template_id = template_id
        self.play_times = play_times

    async def send(self, phone: str, message: PhoneMessage, ref: str) -> str:
        response = await self._call(
            {
                "TemplateId": self.template_id,
                "TemplateParamSet": list(message.fields("voice").values()),
                "CalledNumber": e164(phone),
                "VoiceSdkAppid": self.voice_sdk_app_id,
                "PlayTimes": self.play_times,
                "SessionContext": ref,
            }
        )
        status = response.get("SendStatus")
        if not isinstance(status, dict) or not status.get("CallId"):
            raise SinkUnavailable(f"{self._http.where} answered without a SendStatus.CallId")
        return str(status["CallId"])
