"""Reaching people through a real mosquitto and the agent as users run it (`community-edge run`),
with local WeCom and DingTalk robot endpoints that check requests as the vendors do.

An SOS reaches the person on duty with a card of signed action links, escalates to the next
person on the roster when nobody answers, and that person's link acknowledges it, after which
nothing more is sent about it; the person on duty changes at the shift boundary in the
community's time zone; a step that reaches nobody says so on the alert and on /healthz
and the next step fires at once; a flood of 1,000 SOS alerts rings one person at most
`per_person_limit` times plus one summary (and the messages per alert are measured).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from datetime import time as time_of_day
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml

from edge.alerts import Roster
from tests.agent_process import AgentProcess
from tests.mqtt_publisher import Publisher
from tests.robot_receivers import RobotReceiver, RobotRequest
from tests.servers import MosquittoServer
from tests.waiting import wait_until

KEY = "wecom-KEY-reach-0001"
TOKEN = "dingtalk-TOKEN-reach"
SECRET = "SECreach0123456789abcdef"
PRESS = {"action": "emergency", "battery": 80}


def _roster(path: Path, community: str) -> Roster:
    """One team for `community`, on duty all day (a shift from 00:00 round to 00:00)."""
    path.write_text(
        yaml.safe_dump(
            {
                "timezone": "Asia/Shanghai",
                "people": [
                    {"id": "li-wei", "name": "李伟", "phone": "13812345678"},
                    {"id": "wang-fang", "name": "王芳", "phone": "13987654321"},
                    {"id": "chen-jing", "name": "陈静", "phone": "13600002222"},
                ],
                "teams": [
                    {
                        "id": "security",
                        "community": community,
                        "shifts": [
                            {
                                "name": "all-day",
                                "start": "00:00",
                                "end": "00:00",
                                "rotation": ["li-wei", "wang-fang"],
                            }
                        ],
                    }
                ],
            },
            allow_unicode=True,
        ),
        encoding="utf-8",
    )
    return Roster.load(path)


def _config(
    tmp_path: Path,
    agent_url: str,
    community: str,
    wecom: RobotReceiver,
    dingtalk: RobotReceiver,
    steps: list[dict[str, Any]],
) -> Path:
    roster = tmp_path / "roster.yaml"
    if not roster.exists():
        _roster(roster, community)
    route = {"communities": [community]}
    config = {
        "escalation": {
            "check_s": 0.2,
            "roster_file": str(roster),
            "policies": [{"severity": "critical", "steps": steps}],
        },
        "notifications": {"public_url": agent_url},
        "channels": [
            {"name": "wecom-duty", "type": "wecom", "key": KEY, "base_url": wecom.base_url,
             "route": route},
            {"name": "dingtalk-duty", "type": "dingtalk", "token": TOKEN, "secret": SECRET,
             "base_url": dingtalk.base_url, "route": route},
        ],
    }  # fmt: skip
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def robots() -> Iterator[tuple[RobotReceiver, RobotReceiver]]:
    with (
        RobotReceiver("wecom", KEY) as wecom,
        RobotReceiver("dingtalk", TOKEN, SECRET) as dingtalk,
    ):
        yield wecom, dingtalk


def _agent(
    tmp_path: Path,
    mosquitto: MosquittoServer,
    env: dict[str, str] | None = None,
    **config: Any,
) -> AgentProcess:
    agent = AgentProcess(tmp_path / "agent", mosquitto.url, env=env)
    settings = _config(tmp_path, agent.url, **config)
    agent.extra_args += ["--config", str(settings)]
    return agent


def _cards_for(robot: RobotReceiver, name: str) -> list[RobotRequest]:
    """The accepted messages carrying action links signed for `name`."""
    return [r for r in robot.accepted if any(name in title for title, _ in r.links)]


def _wecom_cards_for(robot: RobotReceiver, name: str) -> list[RobotRequest]:
    return [
        r
        for r in robot.accepted
        if r.body.get("msgtype") == "template_card"
        and r.body["template_card"]["main_title"]["desc"] == f"→ {name}"
    ]


def _alert_ids(agent: AgentProcess, community: str) -> set[str]:
    ids: set[str] = set()
    cursor = ""
    while True:
        page = agent.get("/v1/alerts", community=community, limit=500, cursor=cursor)
        ids.update(a["id"] for a in page["items"])
        if not page["next_cursor"]:
            return ids
        cursor = page["next_cursor"]


def _history(agent: AgentProcess, alert_id: str) -> list[dict[str, Any]]:
    history: list[dict[str, Any]] = agent.get(f"/v1/alerts/{alert_id}")["history"]
    return history


def test_the_next_person_is_reached_when_the_first_does_not_answer_and_a_link_ends_it(
    tmp_path: Path, mosquitto: MosquittoServer, robots: tuple[RobotReceiver, RobotReceiver]
) -> None:
    wecom, dingtalk = robots
    community = "reach-next"
    roster = _roster(tmp_path / "roster.yaml", community)
    now = datetime.now(UTC)
    duty = roster.team_on_duty("security", now)
    following = roster.next_on_roster("security", now)
    assert duty is not None
    assert following is not None
    first, second = duty.person.name, following.name
    steps = [
        {"after_s": 0, "on_duty": "here"},
        {"after_s": 3, "next_on_roster": "here"},
        {"after_s": 6, "person": "chen-jing", "tier": "property_manager"},
    ]
    with (
        _agent(tmp_path, mosquitto, community=community, wecom=wecom, dingtalk=dingtalk,
               steps=steps) as agent,
        Publisher(mosquitto.url) as publisher,
    ):  # fmt: skip
        base = f"ce/{community}/b1/tuya-sos-button"
        pressed = time.monotonic()
        publisher.publish(f"{base}/sos-1", PRESS)
        publisher.publish(f"{base}/sos-2", PRESS)  # a second resident, whom nobody answers
        (card,) = wait_until(lambda: _wecom_cards_for(wecom, first)[:1], what="card to first")
        assert [title for title, _ in card.links] == ["确认接警", "我正在赶往", "已处理完毕"]
        assert all(url.startswith(f"{agent.url}/a/") for _, url in card.links)
        assert "紧急按钮被按下 Emergency button pressed" in card.text  # the rule's words, zh first
        print(f"\nSOS publish to the WeCom card at its robot: {(card.at - pressed) * 1000:.0f} ms")
        ding = wait_until(lambda: _cards_for(dingtalk, first)[:1], what="action card")[0]
        assert ding.body["msgtype"] == "actionCard"
        assert [b["title"] for b in ding.body["actionCard"]["btns"]] == [
            f"确认接警 Acknowledge · {first}",
            f"我正在赶往 On my way · {first}",
            f"已处理完毕 Resolve · {first}",
        ]
        # nobody answers: three seconds on, the next person on the roster
        escalated = wait_until(
            lambda: cards if len(cards := _wecom_cards_for(wecom, second)) >= 2 else None,
            what="cards to the next person",
        )
        assert escalated is not None
        alerts = {
            a["device_id"]: a["id"] for a in agent.get("/v1/alerts", community=community)["items"]
        }
        mine = next(r for r in escalated if alerts["sos-1"] in r.text)
        acknowledge = dict(mine.links)["确认接警"]
        # a chat app's preview opens the link: nothing happens
        page = httpx.get(acknowledge, timeout=10)
        assert page.status_code == 200
        assert second in page.text
        assert agent.get(f"/v1/alerts/{alerts['sos-1']}")["alert"]["status"] == "active"
        done = httpx.post(acknowledge, timeout=10)
        assert done.status_code == 200, done.text
        alert = agent.get(f"/v1/alerts/{alerts['sos-1']}")["alert"]
        assert (alert["status"], alert["acknowledged_by"]) == ("acknowledged", second)
        # the unanswered one reaches 陈静 at 6 s; by then the answered one would have too
        wait_until(
            lambda: any(alerts["sos-2"] in r.text for r in _wecom_cards_for(wecom, "陈静")),
            what="the third step of the unanswered SOS",
        )
        assert not any(alerts["sos-1"] in r.text for r in _wecom_cards_for(wecom, "陈静"))
        notes = [(e["kind"], e["note"]) for e in _history(agent, alerts["sos-1"])]
        assert notes[0] == ("opened", f"notifying {first} (on duty in security, shift all-day)")
        assert notes[1][0] == "escalated"
        assert f"notifying {second} (next on the roster of security)" in notes[1][1]
        assert [k for k, _ in notes] == ["opened", "escalated", "acknowledged"]
        # the mentions and links were for staff of the roster only
        assert {m for r in wecom.accepted + dingtalk.accepted for m in r.mentions} <= {
            "13812345678",
            "13987654321",
            "13600002222",
        }


def test_a_step_that_reaches_nobody_is_said_and_the_next_fires_at_once(
    tmp_path: Path, mosquitto: MosquittoServer, robots: tuple[RobotReceiver, RobotReceiver]
) -> None:
    wecom, dingtalk = robots
    community = "reach-nobody"
    (tmp_path / "roster.yaml").parent.mkdir(parents=True, exist_ok=True)
    _roster(tmp_path / "roster.yaml", "another-community")  # no team answers for this one
    steps = [
        {"after_s": 0, "on_duty": "here"},
        {"after_s": 300, "tier": "duty_officer"},
    ]
    with _agent(
        tmp_path, mosquitto, community=community, wecom=wecom, dingtalk=dingtalk, steps=steps
    ) as agent:
        started = time.monotonic()
        Publisher(mosquitto.url).publish(f"ce/{community}/b1/tuya-sos-button/sos-1", PRESS)
        # step 2 was due in 300 s: it reached the group at once instead
        wait_until(
            lambda: any("告警升级 Escalated" in r.text for r in wecom.accepted),
            what="the next step at once",
        )
        assert time.monotonic() - started < 30
        (alert,) = agent.get("/v1/alerts", community=community)["items"]
        history = _history(agent, alert["id"])
        assert [e["kind"] for e in history] == ["opened", "escalated"]
        assert (
            "reached nobody: nobody is on duty in the teams of reach-nobody/b1"
            in (history[0]["note"])
        )
        assert "the next step at once" in history[0]["note"]
        health = agent.get("/healthz")
        assert health["status"] == "degraded"
        assert health["escalation"]["ok"] is False
        assert health["escalation"]["unreached_steps"] == 1
        assert alert["id"] in health["escalation"]["last_unreached"]


# The robots' rate window in the flood test: 20 messages in any 6 s instead of the vendors' 60 s.
# With the real minute the flood's ~50 messages (a few single ones, then digests of ~22 alerts,
# each near the 4,096-byte limit, and the summary) take three windows: over 120 s by design.
FLOOD_WINDOW_S = 6.0


def test_a_flood_rings_one_person_a_bounded_number_of_times_and_one_summary(
    tmp_path: Path, mosquitto: MosquittoServer, robots: tuple[RobotReceiver, RobotReceiver]
) -> None:
    """1,000 SOS alerts: each reaches both groups, the person on duty at most
    `per_person_limit` + 1 times, and one summary, paced at 20 messages a window (shortened to
    `FLOOD_WINDOW_S` through the `testing.robot_window_s` hook; the pacing and digests are the
    product's own)."""
    wecom, dingtalk = robots
    community = "reach-flood"
    roster = _roster(tmp_path / "roster.yaml", community)
    duty = roster.team_on_duty("security", datetime.now(UTC))
    assert duty is not None
    person = duty.person
    with _agent(
        tmp_path,
        mosquitto,
        env={"COMMUNITY_EDGE_TESTING__ROBOT_WINDOW_S": str(FLOOD_WINDOW_S)},
        community=community,
        wecom=wecom,
        dingtalk=dingtalk,
        steps=[{"after_s": 0, "on_duty": "here"}, {"after_s": 3600, "tier": "manager"}],
    ) as agent:
        started = time.monotonic()
        with Publisher(mosquitto.url, max_inflight=1000) as publisher:
            publisher.publish_many(
                (f"ce/{community}/b{i % 10}/tuya-sos-button/sos-{i}", PRESS) for i in range(1000)
            )
        ids = wait_until(
            lambda: found if len(found := _alert_ids(agent, community)) == 1000 else None,
            timeout=60,
            what="1,000 alerts",
        )
        assert ids is not None

        def told(robot: RobotReceiver) -> set[str]:
            return {i for i in ids if any(i in r.text for r in robot.accepted)}

        # every alert reaches each group (one by one, or listed in a digest), paced at 20 a window
        wait_until(lambda: told(wecom) == ids, timeout=120, poll=1.0, what="WeCom told of all")
        wait_until(lambda: told(dingtalk) == ids, timeout=120, poll=1.0, what="DingTalk all")
        took = time.monotonic() - started
        figures: dict[str, tuple[int, int]] = {}
        for robot in (wecom, dingtalk):
            # paced as the vendor counts: the 21st message after any one reached the robot a
            # window or more after it (a slot counts from the end of its send)
            at = sorted(r.at for r in robot.accepted)
            assert len(at) > 20  # the flood needed more than one window
            gaps = [later - earlier for earlier, later in zip(at, at[20:], strict=False)]
            assert min(gaps) >= FLOOD_WINDOW_S, gaps
            personal = [
                r
                for r in robot.accepted
                if person.phone in r.mentions or any(person.name in t for t, _ in r.links)
                or person.name in json.dumps(r.body.get("template_card", {}), ensure_ascii=False)
            ]  # fmt: skip
            summaries = [r for r in robot.accepted if "Alert flood" in r.text]
            assert len(summaries) == 1, [r.text[:80] for r in summaries]
            assert person.name in summaries[0].text
            assert len(personal) <= 5 + 1  # per_person_limit, then the one summary
            figures[robot._state.vendor] = (len(robot.accepted), len(personal))
        for vendor, (messages, to_person) in figures.items():
            print(
                f"flood of 1000 SOS: {vendor} {messages} messages "
                f"({messages / 1000:.3f} per alert), {to_person} to {person.id} "
                f"(summary included), all delivered in {took:.0f} s"
            )


def test_the_person_on_duty_hands_over_at_the_shift_boundary_in_local_time(
    tmp_path: Path, mosquitto: MosquittoServer, robots: tuple[RobotReceiver, RobotReceiver]
) -> None:
    wecom, dingtalk = robots
    community = "reach-handover"
    zone = ZoneInfo("Asia/Shanghai")
    boundary = (datetime.now(zone) + timedelta(seconds=15)).replace(microsecond=0)
    if boundary.time() < time_of_day(0, 1):
        pytest.skip("too close to local midnight for a same-day shift boundary")
    start, end = boundary - timedelta(hours=1), boundary + timedelta(hours=1)
    roster = {
        "timezone": "Asia/Shanghai",  # the shifts below are local times, UTC+08:00
        "people": [
            {"id": "li-wei", "name": "李伟", "phone": "13812345678"},
            {"id": "zhang-san", "name": "张三", "phone": "13700001111"},
        ],
        "teams": [
            {
                "id": "security",
                "community": community,
                "shifts": [
                    {"name": "before", "start": f"{start:%H:%M:%S}",
                     "end": f"{boundary:%H:%M:%S}", "rotation": ["li-wei"]},
                    {"name": "after", "start": f"{boundary:%H:%M:%S}",
                     "end": f"{end:%H:%M:%S}", "rotation": ["zhang-san"]},
                ],
            }
        ],
    }  # fmt: skip
    (tmp_path / "roster.yaml").write_text(
        yaml.safe_dump(roster, allow_unicode=True), encoding="utf-8"
    )
    steps = [{"after_s": 0, "on_duty": "here"}, {"after_s": 20, "on_duty": "here"}]
    with _agent(
        tmp_path, mosquitto, community=community, wecom=wecom, dingtalk=dingtalk, steps=steps
    ) as agent:
        Publisher(mosquitto.url).publish(f"ce/{community}/b1/tuya-sos-button/sos-1", PRESS)
        assert datetime.now(zone) < boundary, "the agent took too long to start"
        wait_until(lambda: _wecom_cards_for(wecom, "李伟"), what="the card to the shift before")
        wait_until(lambda: _wecom_cards_for(wecom, "张三"), timeout=40, what="after the handover")
        (alert,) = agent.get("/v1/alerts", community=community)["items"]
        notes = [e["note"] for e in _history(agent, alert["id"])]
        assert notes[0] == "notifying 李伟 (on duty in security, shift before)"
        assert "notifying 张三 (on duty in security, shift after)" in notes[1]
