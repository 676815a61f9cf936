"""Local stand-ins for Alibaba Cloud's and Tencent Cloud's SMS and voice APIs, checking requests as
the providers document them, and the callbacks the providers send back.

Each receiver runs http.server on 127.0.0.1 in a thread and verifies what a real endpoint would:
Alibaba's RPC signature v1 (HMAC-SHA1 over the sorted, percent-encoded form, key `secret&`), a
fresh `SignatureNonce`, a `Timestamp` within 15 minutes, the action and version, the template
fields (JSON with exactly the documented variables, each within 35 characters but the link) and
a mainland number; Tencent's TC3-HMAC-SHA256 `Authorization` over `content-type;host` and the
body, `X-TC-Timestamp` within 5 minutes, the action and version, E.164 numbers and the template
parameter counts. The signing here is written from the providers' documents again, not imported,
so a mistake in the agent's signing fails here. `answer` may override a well-formed request's
outcome with a provider error code; `delay_s` makes it slow; not starting it makes it down.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any, Literal, cast
from urllib.parse import parse_qsl, quote

import httpx

from tests.http_receiver import HttpReceiver, state_of

Provider = Literal["aliyun", "tencent"]
Medium = Literal["sms", "voice"]

ALIYUN_KEY_ID = "LTAI-test-key-id"
ALIYUN_SECRET = "aliyun-test-secret-0123456789"
TENCENT_SECRET_ID = "AKID-test-secret-id"
TENCENT_SECRET_KEY = "tencent-test-secret-key-0123456789"
TENCENT_SMS_APP = "1400006666"
TENCENT_VOICE_APP = "1400009999"
SMS_FIELDS = ["level", "summary", "place", "time", "link"]
VOICE_FIELDS = ["level", "summary", "place"]
_MAINLAND = re.compile(r"^1[3-9][0-9]{9}$")
_E164 = re.compile(r"^\+861[3-9][0-9]{9}$")

# the providers' own error answers: (HTTP status, code, message)
ALIYUN_ERRORS = {
    "SignatureDoesNotMatch": (400, "Specified signature is not matched with our calculation."),
    "InvalidAccessKeyId.NotFound": (404, "Specified access key is not found."),
    "SignatureNonceUsed": (400, "The request signature nonce has been used."),
    "InvalidTimeStamp.Expired": (400, "Specified time stamp or date value is expired."),
    "isv.BUSINESS_LIMIT_CONTROL": (200, "触发号码天级流控"),
    "isv.MOBILE_NUMBER_ILLEGAL": (200, "非法手机号"),
    "isv.TEMPLATE_MISSING_PARAMETERS": (200, "模板缺少变量"),
    "isv.INVALID_PARAMETERS": (200, "参数异常"),
    "isv.AMOUNT_NOT_ENOUGH": (200, "账户余额不足"),
    "ServiceUnavailable": (503, "The request has failed due to a temporary failure of the server."),
}


@dataclass(frozen=True)
class ProviderRequest:
    """One request as the provider saw it, and what it answered."""

    action: str
    params: dict[str, Any]  # Alibaba: the form; Tencent: the JSON body
    code: str  # "OK" / "Ok" or the error code answered
    provider_id: str | None  # BizId, CallId, SerialNo when accepted
    at: float  # time.monotonic() when it arrived

    @property
    def accepted(self) -> bool:
        return self.code in ("OK", "Ok")

    @property
    def phone(self) -> str:
        p = self.params
        if "PhoneNumbers" in p:
            return str(p["PhoneNumbers"])
        if "PhoneNumberSet" in p:
            return str(p["PhoneNumberSet"][0])
        return str(p["CalledNumber"])

    @property
    def ref(self) -> str:
        """Our reference, echoed back in callbacks."""
        return str(self.params.get("OutId") or self.params.get("SessionContext"))

    @property
    def fields(self) -> dict[str, str]:
        p = self.params
        if "TemplateParam" in p:
            return cast(dict[str, str], json.loads(p["TemplateParam"]))
        if "TtsParam" in p:
            return cast(dict[str, str], json.loads(p["TtsParam"]))
        names = SMS_FIELDS if "PhoneNumberSet" in p else VOICE_FIELDS
        return dict(zip(names, p["TemplateParamSet"], strict=True))


def aliyun_signature(params: dict[str, str], secret: str) -> str:
    """Alibaba's RPC signature v1, from its document."""

    def enc(text: str) -> str:
        return quote(text, safe="~")

    query = "&".join(f"{enc(k)}={enc(params[k])}" for k in sorted(params))
    to_sign = "POST&%2F&" + enc(query)
    digest = hmac.new((secret + "&").encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def tencent_signature(
    secret_key: str, service: str, host: str, content_type: str, timestamp: int, body: bytes
) -> str:
    """Tencent's TC3-HMAC-SHA256 signature, from its document."""
    day = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    request = (
        f"POST\n/\n\ncontent-type:{content_type}\nhost:{host}\n\ncontent-type;host\n"
        + hashlib.sha256(body).hexdigest()
    )
    to_sign = (
        f"TC3-HMAC-SHA256\n{timestamp}\n{day}/{service}/tc3_request\n"
        + hashlib.sha256(request.encode()).hexdigest()
    )

    def sign(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    key = sign(sign(sign(("TC3" + secret_key).encode(), day), service), "tc3_request")
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


@dataclass
class _State:
    provider: Provider
    medium: Medium
    answer: Callable[[ProviderRequest], str | None]
    delay_s: float
    requests: list[ProviderRequest] = field(default_factory=list)
    nonces: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    serial: int = 0


def _aliyun_check(state: _State, form: dict[str, str]) -> str:
    given = form.pop("Signature", "")
    if form.get("AccessKeyId") != ALIYUN_KEY_ID:
        return "InvalidAccessKeyId.NotFound"
    if not hmac.compare_digest(given, aliyun_signature(form, ALIYUN_SECRET)):
        return "SignatureDoesNotMatch"
    nonce = form.get("SignatureNonce", "")
    with state.lock:
        if not nonce or nonce in state.nonces:
            return "SignatureNonceUsed"
        state.nonces.add(nonce)
    try:
        stamp = datetime.strptime(form.get("Timestamp", ""), "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return "isv.INVALID_PARAMETERS"
    if abs(stamp.replace(tzinfo=UTC).timestamp() - time.time()) > 900:
        return "InvalidTimeStamp.Expired"
    common = {
        "Format": "JSON",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "Version": "2017-05-25",
    }
    if any(form.get(k) != v for k, v in common.items()) or not form.get("RegionId"):
        return "isv.INVALID_PARAMETERS"
    if state.medium == "sms":
        if form.get("Action") != "SendSms" or not form.get("SignName"):
            return "isv.INVALID_PARAMETERS"
        if not _MAINLAND.match(form.get("PhoneNumbers", "")):
            return "isv.MOBILE_NUMBER_ILLEGAL"
        names, raw = SMS_FIELDS, form.get("TemplateParam", "")
        if form.get("TemplateCode") != "SMS_123456789":
            return "isv.SMS_TEMPLATE_ILLEGAL"
    else:
        if form.get("Action") != "SingleCallByTts" or form.get("TtsCode") != "TTS_987654321":
            return "isv.INVALID_PARAMETERS"
        if not _MAINLAND.match(form.get("CalledNumber", "")):
            return "isv.MOBILE_NUMBER_ILLEGAL"
        if form.get("PlayTimes") not in ("1", "2", "3"):
            return "isv.INVALID_PARAMETERS"
        names, raw = VOICE_FIELDS, form.get("TtsParam", "")
    try:
        fields = json.loads(raw)
    except ValueError:
        return "isv.INVALID_JSON_PARAM"
    if not isinstance(fields, dict) or sorted(fields) != sorted(names):
        return "isv.TEMPLATE_MISSING_PARAMETERS"
    if any(not isinstance(v, str) or (k != "link" and len(v) > 35) for k, v in fields.items()):
        return "isv.PARAM_LENGTH_LIMIT"
    if not form.get("OutId"):
        return "isv.INVALID_PARAMETERS"
    return "OK"


def _tencent_check(state: _State, headers: Any, raw: bytes, body: Any) -> str:
    content_type = headers.get("Content-Type", "")
    host = headers.get("Host", "")
    try:
        timestamp = int(headers.get("X-TC-Timestamp", ""))
    except ValueError:
        return "MissingParameter"
    if abs(timestamp - time.time()) > 300:
        return "AuthFailure.SignatureExpire"
    service = "sms" if state.medium == "sms" else "vms"
    day = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    expected = (
        f"TC3-HMAC-SHA256 Credential={TENCENT_SECRET_ID}/{day}/{service}/tc3_request, "
        "SignedHeaders=content-type;host, Signature="
        + tencent_signature(TENCENT_SECRET_KEY, service, host, content_type, timestamp, raw)
    )
    given = headers.get("Authorization", "")
    if not given.startswith(f"TC3-HMAC-SHA256 Credential={TENCENT_SECRET_ID}/"):
        return "AuthFailure.SecretIdNotFound"
    if not hmac.compare_digest(given, expected):
        return "AuthFailure.SignatureFailure"
    action, version = headers.get("X-TC-Action"), headers.get("X-TC-Version")
    if not isinstance(body, dict) or not headers.get("X-TC-Region"):
        return "InvalidParameter"
    if state.medium == "sms":
        if (action, version) != ("SendSms", "2021-01-11"):
            return "InvalidAction"
        if body.get("SmsSdkAppId") != TENCENT_SMS_APP or not body.get("SignName"):
            return "FailedOperation.SignatureIncorrectOrUnapproved"
        if body.get("TemplateId") != "1110":
            return "FailedOperation.TemplateIncorrectOrUnapproved"
        numbers, params = body.get("PhoneNumberSet"), body.get("TemplateParamSet")
        if not isinstance(numbers, list) or len(numbers) != 1 or not _E164.match(numbers[0]):
            return "InvalidParameterValue.IncorrectPhoneNumber"
        count = len(SMS_FIELDS)
    else:
        if (action, version) != ("SendTtsVoice", "2020-09-02"):
            return "InvalidAction"
        if body.get("VoiceSdkAppid") != TENCENT_VOICE_APP or body.get("TemplateId") != "2220":
            return "InvalidParameterValue.TemplateIdNotExist"
        if not _E164.match(str(body.get("CalledNumber"))):
            return "FailedOperation.ParameterError"
        if body.get("PlayTimes") not in (1, 2, 3):
            return "InvalidParameterValue"
        params, count = body.get("TemplateParamSet"), len(VOICE_FIELDS)
    if not isinstance(params, list) or len(params) != count:
        return "InvalidParameterValue.TemplateParameterFormatError"
    if not all(isinstance(p, str) and p for p in params):
        return "InvalidParameterValue.TemplateParameterFormatError"
    if not body.get("SessionContext"):
        return "InvalidParameter"
    return "Ok"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        state = state_of(self, _State)
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        arrived = time.monotonic()
        if state.delay_s:
            time.sleep(state.delay_s)  # a slow provider, in the receiver's own thread
        if state.provider == "aliyun":
            form = dict(parse_qsl(raw.decode(), keep_blank_values=True))
            params: dict[str, Any] = dict(form)
            code = _aliyun_check(state, form) if self.path == "/" else "InvalidAction.NotFound"
            action = form.get("Action", "")
        else:
            try:
                params = json.loads(raw)
            except ValueError:
                params = {}
            code = _tencent_check(state, self.headers, raw, params) if self.path == "/" else "X"
            action = self.headers.get("X-TC-Action", "")
        got = ProviderRequest(action, params, code, None, arrived)
        if got.accepted:
            override = state.answer(got)
            if override is not None:
                code = override
        with state.lock:
            state.serial += 1
            serial = state.serial
        provider_id = f"{state.provider}-{state.medium}-{serial}" if code in ("OK", "Ok") else None
        got = ProviderRequest(action, params, code, provider_id, arrived)
        with state.lock:
            state.requests.append(got)
        status, reply = self._reply(state, got)
        data = json.dumps(reply, ensure_ascii=False).encode()
        with contextlib.suppress(ConnectionError):
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    def _reply(self, state: _State, got: ProviderRequest) -> tuple[int, dict[str, Any]]:
        request_id = f"req-{got.provider_id or 'err'}"
        if state.provider == "aliyun":
            if got.accepted:
                key = "BizId" if state.medium == "sms" else "CallId"
                return 200, {
                    "Code": "OK",
                    "Message": "OK",
                    key: got.provider_id,
                    "RequestId": request_id,
                }
            status, message = ALIYUN_ERRORS.get(got.code, (200, "error"))
            return status, {"Code": got.code, "Message": message, "RequestId": request_id}
        if state.medium == "sms":
            entry = {
                "SerialNo": got.provider_id or "",
                "PhoneNumber": got.params.get("PhoneNumberSet", [""])[0],
                "Fee": 1 if got.accepted else 0,
                "SessionContext": got.params.get("SessionContext", ""),
                "Code": got.code,
                "Message": "send success" if got.accepted else "error",
                "IsoCode": "CN",
            }
            if got.accepted or got.code.startswith(
                ("LimitExceeded.PhoneNumber", "InvalidParameterValue.Incorrect")
            ):
                return 200, {"Response": {"SendStatusSet": [entry], "RequestId": request_id}}
        elif got.accepted:
            sent = {"CallId": got.provider_id, "SessionContext": got.params.get("SessionContext")}
            return 200, {"Response": {"SendStatus": sent, "RequestId": request_id}}
        error = {"Code": got.code, "Message": "error"}
        return 200, {"Response": {"Error": error, "RequestId": request_id}}

    def log_message(self, format: str, *args: object) -> None:
        return None


class ProviderReceiver(HttpReceiver[_State]):
    """One provider's SMS or voice endpoint on 127.0.0.1; it may start late on a chosen port."""

    def __init__(
        self,
        provider: Provider,
        medium: Medium,
        answer: Callable[[ProviderRequest], str | None] = lambda _: None,
        *,
        delay_s: float = 0.0,
        port: int = 0,
    ) -> None:
        state = _State(provider, medium, answer, delay_s)
        super().__init__(_Handler, state, port=port, name="provider-receiver")
        self.provider = provider
        self.medium = medium

    @property
    def url(self) -> str:
        return self.base_url

    @property
    def requests(self) -> list[ProviderRequest]:
        with self._state.lock:
            return list(self._state.requests)

    @property
    def accepted(self) -> list[ProviderRequest]:
        return [r for r in self.requests if r.accepted]

    # -- the provider's callbacks, as documented -----------------------------------------------

    def press(
        self, gateway: str, token: str, request: ProviderRequest, key: str = "1"
    ) -> httpx.Response:
        """The callee pressed `key`: the key callback the provider pushes to the gateway."""
        url = f"{gateway}/callbacks/{self.provider}/{token}/voice"
        if self.provider == "aliyun":  # VoiceCallReport, HTTP batch push: a JSON array
            body: Any = [
                {
                    "call_id": request.provider_id,
                    "status_code": "300000",
                    "smart_status_code": "ANSWERED",
                    "dtmf": key,
                    "status_time": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                    "out_id": request.ref,
                }
            ]
        else:  # 语音通知按键通知
            body = {
                "voicekey_callback": {
                    "call_from": "",
                    "callid": request.provider_id,
                    "keypress": key,
                    "mobile": request.phone.removeprefix("+86"),
                    "nationcode": "86",
                }
            }
        return httpx.post(url, json=body, timeout=10)

    def report(
        self, gateway: str, token: str, request: ProviderRequest, ok: bool = True
    ) -> httpx.Response:
        """A delivery receipt (SMS) or call record (voice) pushed to the gateway."""
        url = f"{gateway}/callbacks/{self.provider}/{token}/{self.medium}"
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        body: Any
        if self.provider == "aliyun" and self.medium == "sms":
            body = [
                {
                    "phone_number": request.phone,
                    "send_time": now,
                    "report_time": now,
                    "success": ok,
                    "err_code": "DELIVERED" if ok else "MK:0001",
                    "err_msg": "用户接收成功" if ok else "失败",
                    "sms_size": "1",
                    "biz_id": request.provider_id,
                    "out_id": request.ref,
                }
            ]
        elif self.provider == "aliyun":
            body = [
                {
                    "call_id": request.provider_id,
                    "start_time": now if ok else "",
                    "end_time": now if ok else "",
                    "duration": "12" if ok else "0",
                    "status_code": "200000" if ok else "200005",
                    "status_msg": "用户听音结束" if ok else "用户未接",
                    "out_id": request.ref,
                }
            ]
        elif self.medium == "sms":
            body = [
                {
                    "user_receive_time": now,
                    "nationcode": "86",
                    "mobile": request.phone.removeprefix("+86"),
                    "report_status": "SUCCESS" if ok else "FAIL",
                    "errmsg": "DELIVRD" if ok else "MK:0001",
                    "description": "用户短信送达成功" if ok else "失败",
                    "sid": request.provider_id,
                }
            ]
        else:
            stamp = str(int(time.time()))
            body = {
                "voiceprompt_callback": {
                    "result": "0" if ok else "1",
                    "accept_time": stamp,
                    "call_from": "",
                    "callid": request.provider_id,
                    "end_calltime": stamp,
                    "fee": "1",
                    "mobile": request.phone.removeprefix("+86"),
                    "nationcode": "86",
                    "start_calltime": stamp,
                }
            }
        return httpx.post(url, json=body, timeout=10)
