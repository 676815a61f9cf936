"""Two gateways, one central API on a real PostgreSQL: SOS presses on each gateway's broker arrive
exactly once centrally, also those raised while the central API was down (the outboxes catch up).

Each agent is `community-edge run` with its own mosquitto and its own edge_agent token (one
community each), configured through COMMUNITY_EDGE_CENTRAL__URL / __TOKEN; the central API is
`community-edge api --store postgresql://...`, stopped and started again on the same port.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psycopg

from tests.agent_process import AgentProcess, wait_for
from tests.central_process import CentralApiProcess
from tests.mqtt_publisher import publish
from tests.servers import MosquittoFactory, PostgresServer

COMMUNITIES = ("north", "south")
DEPTH = 'community_edge_outbox_depth{lane="events",sink="central"}'
ERRORS = 'community_edge_sink_errors_total{sink="central"}'


def _press(mqtt_url: str, community: str, numbers: range) -> int:
    """One SOS press from each button, QoS 1; returns how many the broker acknowledged."""
    presses = [
        (
            f"ce/{community}/b1/tuya-sos-button/sos-{number:02d}",
            {"action": "emergency", "battery": 80, "ts": time.time_ns() // 10**6, "seq": 1},
        )
        for number in numbers
    ]
    return publish(mqtt_url, presses)


def _central_alerts(central: CentralApiProcess, token: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = central.get(token, "/v1/alerts", limit=500)["items"]
    return items


def test_two_agents_post_to_one_central_api_exactly_once_across_its_outage(
    tmp_path: Path, postgres: PostgresServer, mosquitto_factory: MosquittoFactory
) -> None:
    database = postgres.create_database("central")
    central = CentralApiProcess(tmp_path / "central", postgres.url(database))
    platform = central.create_token("platform", "*")
    duty = {c: central.create_token("duty_officer", c) for c in COMMUNITIES}
    agents = {
        c: AgentProcess(
            tmp_path / c,
            mosquitto_factory().url,
            env={
                "COMMUNITY_EDGE_CENTRAL__URL": central.url,
                "COMMUNITY_EDGE_CENTRAL__TOKEN": central.create_token("edge_agent", c),
            },
        )
        for c in COMMUNITIES
    }
    with central:
        for agent in agents.values():
            agent.start()
        try:
            published = sum(_press(agents[c].mqtt_url, c, range(5)) for c in COMMUNITIES)
            wait_for(lambda: len(_central_alerts(central, platform)) == 10, what="10 alerts")

            central.stop()  # down: the agents keep every event in their outboxes
            published += sum(_press(agents[c].mqtt_url, c, range(5, 10)) for c in COMMUNITIES)
            for community, agent in agents.items():
                alerts = wait_for(
                    lambda a=agent, c=community: (
                        len(found := a.get("/v1/alerts", community=c)["items"]) == 10 and found
                    ),
                    what=f"10 alerts on the {community} gateway",
                )
                for alert in sorted(alerts, key=lambda a: a["id"])[:2]:
                    response = agent.post(f"/v1/alerts/{alert['id']}/ack", {"note": "on it"})
                    assert response.status_code == 200, response.text
            for agent in agents.values():
                wait_for(lambda a=agent: a.metrics()[DEPTH] == 7, what="7 events owed")
                wait_for(lambda a=agent: a.metrics()[ERRORS] >= 2, what="failed deliveries")
            time.sleep(2.0)  # the point: an outage of seconds, the agents backing off meanwhile

            central.start()
            for agent in agents.values():
                wait_for(lambda a=agent: a.metrics()[DEPTH] == 0, within_s=40, what="caught up")
            expected: dict[str, list[str]] = {}
            for community, agent in agents.items():
                for alert in agent.get("/v1/alerts", community=community, limit=100)["items"]:
                    history = agent.get(f"/v1/alerts/{alert['id']}")["history"]
                    expected[alert["id"]] = [e["id"] for e in history]
            central_view = {
                a["id"]: [
                    e["id"] for e in central.get(platform, f"/v1/alerts/{a['id']}")["history"]
                ]
                for a in _central_alerts(central, platform)
            }
            for community in COMMUNITIES:
                mine = _central_alerts(central, duty[community])
                assert len(mine) == 10
                assert {a["community"] for a in mine} == {community}
                assert {a["unit"] for a in mine} == {None}  # open enrollment: no unit known
            summaries = central.get(platform, "/v1/summaries")
        finally:
            for agent in agents.values():
                agent.stop()
    with psycopg.connect(postgres.dsn(database)) as conn:
        events, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT id) FROM alert_events"
        ).fetchone() or (0, 0)
        by_status: dict[str, int] = dict(
            conn.execute("SELECT status, count(*) FROM alerts GROUP BY status").fetchall()
        )
        gateways = conn.execute("SELECT count(DISTINCT gateway) FROM alerts").fetchone()

    assert published == 20
    assert len(expected) == 20
    assert central_view == expected  # every event of every alert, once, as the gateways hold them
    assert events == distinct == 24  # 20 opened, 4 acknowledged: nothing lost, nothing twice
    assert by_status == {"active": 16, "acknowledged": 4}
    assert gateways == (2,)
    assert [(s["community"], s["open_by_severity"]) for s in summaries] == [
        ("north", {"critical": 10}),
        ("south", {"critical": 10}),
    ]
