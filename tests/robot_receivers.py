"""Local stand-ins for the WeCom and DingTalk robot endpoints that check requests as the vendors do.

Each runs http.server on 127.0.0.1 in a thread. WeCom: `POST /cgi-bin/webhook/send?key=KEY`,
body `{"msgtype": "markdown", "markdown": {"content": ...}}` (content at most 4096 bytes) or
`text` with `mentioned_mobile_list` (at most 2048 bytes) or a `template_card` of the kinds a
group robot may send (`text_notice`, `news_notice`: a `main_title`, a `card_action` of type 1 with
a URL, at most three jumps of type 1 with a title and a URL, at most six horizontal rows); a wrong
key is errcode 93000. DingTalk: `POST /robot/send?access_token=TOKEN[&timestamp=&sign=]`, body
`{"msgtype": "markdown", "markdown": {"title", "text"}, "at": {...}}` or `{"msgtype":
"actionCard", "actionCard": {"title", "text", "btns": [{"title", "actionURL"}]}}`; with a secret, the signature is recomputed and the
timestamp must be within an hour, else errcode 310000. Any malformed body is errcode 40035 /
40058. `answer` may override the errcode of a well-formed request (45009, 130101, ...).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from tests.http_receiver import HttpReceiver, state_of

Vendor = Literal["wecom", "dingtalk"]


@dataclass(frozen=True)
class RobotRequest:
    """One POST as the robot endpoint saw it, and what it answered."""

    path: str
    query: dict[str, str]
    body: dict[str, Any]
    raw: bytes
    errcode: int
    at: float  # time.monotonic()

    @property
    def text(self) -> str:
        """The message text, whatever its type."""
        kind = self.body.get("msgtype")
        if kind == "markdown":
            md = self.body["markdown"]
            return str(md.get("content") or md.get("text"))
        if kind == "template_card":
            card = self.body["template_card"]
            rows = " ".join(
                f"{r['keyname']}: {r['value']}" for r in card.get("horizontal_content_list", [])
            )
            return f"{card['main_title'].get('title', '')} {card.get('sub_title_text', '')} {rows}"
        if kind == "actionCard":
            return str(self.body["actionCard"]["text"])
        return str(self.body["text"]["content"])

    @property
    def links(self) -> list[tuple[str, str]]:
        """(title, URL) of each jump or button: the action links a card carries."""
        kind = self.body.get("msgtype")
        if kind == "template_card":
            return [(j["title"], j["url"]) for j in self.body["template_card"].get("jump_list", [])]
        if kind == "actionCard":
            return [(b["title"], b["actionURL"]) for b in self.body["actionCard"].get("btns", [])]
        return []

    @property
    def mentions(self) -> list[str]:
        """The mobile numbers the message @s."""
        if self.body.get("msgtype") == "text":
            return list(self.body["text"].get("mentioned_mobile_list", []))
        return list(self.body.get("at", {}).get("atMobiles", []))


def dingtalk_sign(secret: str, timestamp: str) -> str:
    """What DingTalk computes: Base64(HMAC-SHA256(secret, "<timestamp>\\n<secret>"))."""
    mac = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


@dataclass
class _State:
    vendor: Vendor
    credential: str  # WeCom key or DingTalk access token
    secret: str | None
    answer: Callable[[RobotRequest], int | None]
    requests: list[RobotRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _wecom_check(state: _State, query: dict[str, str], body: Any) -> int:
    if query.get("key") != state.credential:
        return 93000  # invalid webhook url
    if not isinstance(body, dict):
        return 40058
    kind = body.get("msgtype")
    if kind == "markdown":
        md = body.get("markdown")
        if (
            set(body) != {"msgtype", "markdown"}
            or not isinstance(md, dict)
            or set(md) != {"content"}
        ):
            return 40058
        content, limit = md["content"], 4096
    elif kind == "text":
        text = body.get("text")
        if set(body) != {"msgtype", "text"} or not isinstance(text, dict):
            return 40058
        if not set(text) <= {"content", "mentioned_list", "mentioned_mobile_list"}:
            return 40058
        content, limit = text.get("content"), 2048
    elif kind == "template_card":
        return _wecom_card_check(body)
    else:
        return 40008
    if not isinstance(content, str) or not content:
        return 44004
    if len(content.encode()) > limit:
        return 40058
    return 0


def _wecom_card_check(body: dict[str, Any]) -> int:
    card = body.get("template_card")
    if set(body) != {"msgtype", "template_card"} or not isinstance(card, dict):
        return 40058
    if card.get("card_type") not in ("text_notice", "news_notice"):
        return 40058  # button_interaction and the others need an application, not a robot
    title = card.get("main_title")
    if not isinstance(title, dict) or not (title.get("title") or title.get("desc")):
        return 40058
    action = card.get("card_action")
    if not isinstance(action, dict) or action.get("type") != 1 or not _http(action.get("url")):
        return 40058
    jumps = card.get("jump_list", [])
    if not isinstance(jumps, list) or len(jumps) > 3:
        return 40058
    for jump in jumps:
        if jump.get("type") != 1 or not _http(jump.get("url")) or not jump.get("title"):
            return 40058
    rows = card.get("horizontal_content_list", [])
    if not isinstance(rows, list) or len(rows) > 6:
        return 40058
    if any(not isinstance(r, dict) or not r.get("keyname") for r in rows):
        return 40058
    return 0


def _http(url: object) -> bool:
    return isinstance(url, str) and url.startswith(("http://", "https://"))


def _dingtalk_check(state: _State, query: dict[str, str], body: Any) -> int:
    if query.get("access_token") != state.credential:
        return 300001  # token is not exist
    if state.secret is not None:
        timestamp, given = query.get("timestamp", ""), query.get("sign", "")
        if not timestamp.isdigit() or abs(time.time() * 1000 - int(timestamp)) > 3600_000:
            return 310000
        if not hmac.compare_digest(given, dingtalk_sign(state.secret, timestamp)):
            return 310000
    if isinstance(body, dict) and body.get("msgtype") == "actionCard":
        card = body.get("actionCard")
        if set(body) != {"msgtype", "actionCard"} or not isinstance(card, dict):
            return 40035
        if not all(isinstance(card.get(k), str) and card[k] for k in ("title", "text")):
            return 40035
        btns = card.get("btns")
        if not isinstance(btns, list) or not btns:
            return 40035
        if any(not b.get("title") or not _http(b.get("actionURL")) for b in btns):
            return 40035
        return 0
    if not isinstance(body, dict) or body.get("msgtype") != "markdown":
        return 40035
    md = body.get("markdown")
    if not isinstance(md, dict) or set(md) != {"title", "text"}:
        return 40035
    if not all(isinstance(md[k], str) and md[k] for k in ("title", "text")):
        return 40035
    at = body.get("at", {})
    if not isinstance(at, dict) or not set(at) <= {"atMobiles", "atUserIds", "isAtAll"}:
        return 40035
    return 0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        state = state_of(self, _State)
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        parts = urlsplit(self.path)
        # the vendors' URL decoding: a `sign` with + / = arrives as sent only if it was encoded
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        expected = "/cgi-bin/webhook/send" if state.vendor == "wecom" else "/robot/send"
        if parts.path != expected:
            status, errcode = 404, -1
        else:
            check = _wecom_check if state.vendor == "wecom" else _dingtalk_check
            status, errcode = 200, check(state, query, body)
        got = RobotRequest(parts.path, query, body or {}, raw, errcode, time.monotonic())
        if errcode == 0:
            override = state.answer(got)
            if override is not None:
                errcode = override
                got = RobotRequest(parts.path, query, body or {}, raw, errcode, got.at)
        with state.lock:
            state.requests.append(got)
        reply = json.dumps({"errcode": errcode, "errmsg": "ok" if errcode == 0 else "error"})
        with contextlib.suppress(ConnectionError):
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply.encode())

    def log_message(self, format: str, *args: object) -> None:
        return None


class RobotReceiver(HttpReceiver[_State]):
    """A WeCom or DingTalk robot endpoint on 127.0.0.1; it may start late on a chosen port."""

    def __init__(
        self,
        vendor: Vendor,
        credential: str,
        secret: str | None = None,
        answer: Callable[[RobotRequest], int | None] = lambda _: None,
        *,
        port: int = 0,
    ) -> None:
        state = _State(vendor, credential, secret, answer)
        super().__init__(_Handler, state, port=port, name="robot-receiver")

    @property
    def requests(self) -> list[RobotRequest]:
        with self._state.lock:
            return list(self._state.requests)

    @property
    def accepted(self) -> list[RobotRequest]:
        return [r for r in self.requests if r.errcode == 0]
