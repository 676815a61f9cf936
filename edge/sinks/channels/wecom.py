"""WeCom (企业微信) group robot: alert events as markdown (or text, to @ people by mobile number).

    POST <base>/cgi-bin/webhook/send?key=<key>
    {"msgtype": "markdown", "markdown": {"content": "<at most 4096 bytes>"}}
    {"msgtype": "text", "text": {"content": "<at most 2048 bytes>",
                                 "mentioned_mobile_list": ["138..."]}}

It answers HTTP 200 with `{"errcode": 0, "errmsg": "ok"}`; 45009 is the rate limit (20 messages a
minute per robot). Markdown cannot @ by mobile number, so a robot configured with mentions sends
text messages. The mentioned numbers are duty staff from the configuration, never residents.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from edge.clock import Clock
from edge.sinks.channels.message import Notice, NoticeFormat, clip
from edge.sinks.channels.robot import RateWindow, RobotSink
from edge.sinks.refusal import HTTP_TIMEOUT_S

BASE_URL = "https://qyapi.weixin.qq.com"
MARKDOWN_MAX_BYTES = 4096
TEXT_MAX_BYTES = 2048


class WecomSink(RobotSink):
    """One WeCom group robot."""

    vendor = "wecom"
    rate_limited = frozenset({45009})
    # 40008 invalid message type, 40058 invalid parameter, 44004 empty content: the message itself
    invalid_message = frozenset({40008, 40058, 44004})

    def __init__(
        self,
        name: str,
        key: str,
        *,
        notices: NoticeFormat,
        rate: RateWindow,
        base_url: str = BASE_URL,
        mention_mobiles: Sequence[str] = (),
        timeout_s: float = HTTP_TIMEOUT_S,
        clock: Clock | None = None,
    ) -> None:
        self._mentions = list(mention_mobiles)
        self.max_bytes = TEXT_MAX_BYTES if self._mentions else MARKDOWN_MAX_BYTES
        super().__init__(
            name,
            f"{base_url.rstrip('/')}/cgi-bin/webhook/send",
            {"key": key},  # the robot's only credential
            notices=notices,
            rate=rate,
            secrets=[key],
            timeout_s=timeout_s,
            clock=clock,
        )

    def content(self, notice: Notice) -> str:
        return notice.text() if self._mentions else notice.markdown("\n")

    def body(self, notice: Notice) -> dict[str, Any]:
        content = clip(self.content(notice), self.max_bytes)
        if self._mentions:
            return {
                "msgtype": "text",
                "text": {"content": content, "mentioned_mobile_list": self._mentions},
            }
        return {"msgtype": "markdown", "markdown": {"content": content}}
