"""DingTalk (钉钉) custom robot: alert events as markdown, optionally signed ("加签").

    POST <base>/robot/send?access_token=<token>[&timestamp=<ms>&sign=<signature>]
    {"msgtype": "markdown", "markdown": {"title": "...", "text": "..."},
     "at": {"atMobiles": ["138..."], "isAtAll": false}}
    {"msgtype": "actionCard", "actionCard": {"title": "...", "text": "...", "btnOrientation": "0",
     "btns": [{"title": "确认接警 Acknowledge · 李伟", "actionURL": "https://.../a/<token>"}]}}

A message that addresses people mentions their numbers (markdown `at`); one that carries action
links (a person addressed and the gateway's public address known) is an action card instead: the
group robot has no callback, so its buttons are the signed one-time links (each opens a page that
asks before it acts). An action card cannot @ anyone.

With a secret (the `SEC...` string of the robot's security settings) each request carries
`timestamp` (milliseconds) and `sign` = Base64(HMAC-SHA256(key=secret, msg="<timestamp>\\n<secret>")),
URL-encoded; DingTalk refuses a timestamp more than an hour from its clock, and every attempt is
signed anew. It answers `{"errcode": 0, "errmsg": "ok"}`; 130101 is "sending too fast" (20
messages a minute per robot), 310000 a signature, keyword or IP-allowlist problem (retried: a
configuration fault). A robot secured by keyword can use 告警: every message title holds it.
Markdown line breaks need a blank line; mentioned numbers (duty staff from the configuration, never
residents) are also written into the text, where DingTalk expects them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any

from edge.clock import Clock
from edge.model import epoch_ms
from edge.sinks.channels.message import Notice, NoticeFormat, clip
from edge.sinks.channels.robot import RateWindow, RobotSink
from edge.sinks.refusal import HTTP_TIMEOUT_S

BASE_URL = "https://oapi.dingtalk.com"
MAX_BYTES = 4096  # our cap, not DingTalk's: what a phone screen shows without scrolling far
TITLE_CHARS = 60  # the title is what the notification preview shows


def sign(secret: str, timestamp_ms: int) -> str:
    """The `sign` parameter before URL encoding: Base64 of the HMAC-SHA256."""
    mac = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


class DingtalkSink(RobotSink):
    """One DingTalk custom robot."""

    vendor = "dingtalk"
    max_bytes = MAX_BYTES
    rate_limited = frozenset({130101})
    invalid_message = frozenset({40035})  # a required parameter is missing: the message itself

    def __init__(
        self,
        name: str,
        token: str,
        *,
        notices: NoticeFormat,
        rate: RateWindow,
        secret: str | None = None,
        base_url: str = BASE_URL,
        mention_mobiles: Sequence[str] = (),
        timeout_s: float = HTTP_TIMEOUT_S,
        clock: Clock | None = None,
    ) -> None:
        self._secret = secret or None
        self._mentions = list(mention_mobiles)
        super().__init__(
            name,
            f"{base_url.rstrip('/')}/robot/send",
            {"access_token": token},
            notices=notices,
            rate=rate,
            secrets=[token, *([secret] if secret else [])],
            timeout_s=timeout_s,
            clock=clock,
        )

    def params(self) -> Mapping[str, str]:
        if self._secret is None:
            return {}
        timestamp = epoch_ms(self._clock.now())
        return {"timestamp": str(timestamp), "sign": sign(self._secret, timestamp)}

    def content(self, notice: Notice) -> str:
        text = notice.markdown("\n\n")
        mentions = self._mentioned(notice)
        if mentions:
            text += "\n\n" + " ".join(f"@{m}" for m in mentions)
        return text

    def _mentioned(self, notice: Notice) -> list[str]:
        """The configured numbers and those of the people the notice addresses."""
        return list(dict.fromkeys([*self._mentions, *(p.phone for p in notice.people if p.phone)]))

    def body(self, notice: Notice) -> dict[str, Any]:
        if notice.actions:
            # the group robot has no callback: its action card's buttons are the signed links
            return {
                "msgtype": "actionCard",
                "actionCard": {
                    "title": notice.title[:TITLE_CHARS],
                    "text": clip(_card_text(notice), self.max_bytes),
                    "btnOrientation": "0",
                    "btns": [
                        {"title": f"{a.label} · {a.person}", "actionURL": a.url}
                        for a in notice.actions
                    ],
                },
            }
        return {
            "msgtype": "markdown",
            "markdown": {
                "title": notice.title[:TITLE_CHARS],
                "text": clip(self.content(notice), self.max_bytes),
            },
            "at": {"atMobiles": self._mentioned(notice), "isAtAll": False},
        }


def _card_text(notice: Notice) -> str:
    """The card's markdown: the notice without its links (they are the buttons)."""
    parts = [f"**{notice.title}**", *(f"> {line}" for line in notice.lines)]
    if notice.link is not None:
        parts.append(f"[查看详情 Details]({notice.link})")
    return "\n\n".join(parts)
