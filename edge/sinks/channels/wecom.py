"""WeCom (企业微信) group robot: alert events as markdown (or text, to @ people by mobile number),
or as a template card whose jump links are the action links of the person addressed.

    POST <base>/cgi-bin/webhook/send?key=<key>
    {"msgtype": "markdown", "markdown": {"content": "<at most 4096 bytes>"}}
    {"msgtype": "text", "text": {"content": "<at most 2048 bytes>",
                                 "mentioned_mobile_list": ["138..."]}}
    {"msgtype": "template_card", "template_card": {"card_type": "text_notice",
        "main_title": {"title", "desc"}, "sub_title_text", "horizontal_content_list": [<= 6],
        "jump_list": [{"type": 1, "title", "url"}, <= 3], "card_action": {"type": 1, "url"}}}

It answers HTTP 200 with `{"errcode": 0, "errmsg": "ok"}`; 45009 is the rate limit (20 messages a
minute per robot). Markdown cannot @ by mobile number, so a robot configured with mentions, or a
message that addresses people (the person on duty), sends text. A group robot's template card
has no buttons that call back (`button_interaction` needs an application), but `text_notice`
takes up to three jump links: acknowledge, on my way and resolve for the person addressed, each
a signed one-time link whose page asks before it acts; the card cannot @ anyone. The mentioned
numbers are duty staff from the configuration and the roster, never residents.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from edge.clock import Clock
from edge.sinks.channels.message import LINK_LABEL, Notice, NoticeFormat, clip
from edge.sinks.channels.robot import RateWindow, RobotSink
from edge.sinks.refusal import HTTP_TIMEOUT_S

BASE_URL = "https://qyapi.weixin.qq.com"
MARKDOWN_MAX_BYTES = 4096
TEXT_MAX_BYTES = 2048
# template card limits as the robot documents them (characters)
CARD_TITLE_CHARS = 26
CARD_SUBTITLE_CHARS = 112
CARD_ROWS = 6
CARD_KEY_CHARS = 5
CARD_VALUE_CHARS = 40  # 26 recommended; an alert id needs 32
CARD_JUMPS = 3
CARD_JUMP_CHARS = 13  # a jump's title: the Chinese label only (the page says it in full)


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
        return notice.text() if self._mentioned(notice) else notice.markdown("\n")

    def limit(self, notice: Notice) -> int:
        return TEXT_MAX_BYTES if self._mentioned(notice) else MARKDOWN_MAX_BYTES

    def body(self, notice: Notice) -> dict[str, Any]:
        if notice.actions:
            return _card(notice)
        content = clip(self.content(notice), self.limit(notice))
        mentions = self._mentioned(notice)
        if mentions:
            return {
                "msgtype": "text",
                "text": {"content": content, "mentioned_mobile_list": mentions},
            }
        return {"msgtype": "markdown", "markdown": {"content": content}}

    def _mentioned(self, notice: Notice) -> list[str]:
        """The configured numbers and those of the people the notice addresses."""
        return list(dict.fromkeys([*self._mentions, *(p.phone for p in notice.people if p.phone)]))


def _card(notice: Notice) -> dict[str, Any]:
    """A `text_notice` template card: the notice's lines, the first person's three links."""
    person = notice.actions[0].person
    jumps = [
        {"type": 1, "title": LINK_LABEL[a.verb][0][:CARD_JUMP_CHARS], "url": a.url}
        for a in notice.actions
        if a.person == person
    ][:CARD_JUMPS]
    rows = [
        {"keyname": key[:CARD_KEY_CHARS], "value": value[:CARD_VALUE_CHARS]}
        for key, _, value in (line.partition(": ") for line in notice.lines[1:])
        if value
    ][:CARD_ROWS]
    card: dict[str, Any] = {
        "card_type": "text_notice",
        "main_title": {"title": notice.title[:CARD_TITLE_CHARS], "desc": f"→ {person}"},
        "sub_title_text": (notice.lines[0] if notice.lines else "")[:CARD_SUBTITLE_CHARS],
        "horizontal_content_list": rows,
        "jump_list": jumps,
        "card_action": {"type": 1, "url": notice.link or jumps[0]["url"]},
    }
    return {"msgtype": "template_card", "template_card": card}
