"""An SMS carries the same signed action link as every channel (`NotificationLinks`), behind a
short code: it expires like the others (minutes for life-safety alarms), never later than
`phone.link_valid_minutes`, and a family member gets no resolve link."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from edge.clock import FakeClock
from edge.sinks import Card
from gateway.action_links import ActionLinks
from gateway.notification_links import NotificationLinks, ShortNotificationLinks
from gateway.short_links import ShortLinks
from tests.factories import AT, opened_event

LI = Card("li-wei", "李伟", "13812345678")


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[tuple[ActionLinks, ShortLinks, FakeClock]]:
    links, short = ActionLinks(tmp_path), ShortLinks(tmp_path)
    yield links, short, FakeClock(AT)
    links.close()
    short.close()


@pytest.mark.parametrize(
    ("category", "cap_minutes", "lives_minutes"),
    [("smoke", 30, 15), ("door", 30, 30), ("door", 500, 240)],
)
def test_an_sms_link_expires_like_every_channels_and_at_most_at_the_cap(
    parts: tuple[ActionLinks, ShortLinks, FakeClock],
    category: str,
    cap_minutes: int,
    lives_minutes: int,
) -> None:
    links, short, clock = parts
    made = NotificationLinks(
        links, "https://gw.example/", now=clock.now, life_safety_minutes=15, other_minutes=240
    )
    sms = ShortNotificationLinks(made, short, timedelta(minutes=cap_minutes))
    alert = opened_event(1, rule=category, category=category).alert
    url = sms.link(alert, "ack", LI)
    assert url is not None
    assert url.startswith("https://gw.example/s/")
    code = url.rsplit("/", 1)[1]
    token = short.token(code, AT + timedelta(minutes=lives_minutes - 1))
    assert token is not None
    claim = links.verify(token, AT)
    assert (claim.alert_id, claim.person_id, claim.person_name) == ("a1", "li-wei", "李伟")
    assert claim.expires_at == AT + timedelta(minutes=lives_minutes)
    assert short.token(code, AT + timedelta(minutes=lives_minutes, seconds=1)) is None
    family = Card("family:c1/b1/3-201#0", "赵小红", "13900002222")
    assert sms.link(alert, "resolve", family) is None
    assert (
        NotificationLinks(
            links, None, now=clock.now, life_safety_minutes=15, other_minutes=240
        ).link(alert, "ack", LI)
        is None
    )  # no public address: no link at all
