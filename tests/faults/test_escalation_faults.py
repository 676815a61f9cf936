"""Escalation through a real broker: an unacknowledged SOS climbs the tiers, acknowledging stops it,
and the timers survive an agent SIGKILL and restart. Exact counts of events and tiers.

The agent runs as users run it (`community-edge run`, a child process) with a policy in seconds:
the duty officer at once, the property manager after 3 s, the emergency contacts after 6 s, then
the emergency contacts again every 6 s; the escalation task looks every 0.1 s.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.agent_process import TOKEN, AgentProcess, wait_for
from tests.mqtt_publisher import publish
from tests.servers import MosquittoFactory

POLICY = {
    "severity": "critical",
    "steps": [
        {"after_s": 0, "tier": "duty_officer"},
        {"after_s": 3, "tier": "property_manager"},
        {"after_s": 6, "tier": "emergency_contacts"},
    ],
    "repeat_every_s": 6,
}
ENV = {
    "COMMUNITY_EDGE_ESCALATION__POLICIES": json.dumps([POLICY]),
    "COMMUNITY_EDGE_ESCALATION__CHECK_S": "0.1",
}


def _press(url: str, device_id: str) -> None:
    """One SOS press at QoS 1, its PUBACK awaited."""
    publish(url, [(f"ce/esc/b1/tuya-sos-button/{device_id}", {"action": "emergency"})])


def _alert_id(agent: AgentProcess, device_id: str) -> str:
    def find() -> str | None:
        items = agent.get("/v1/alerts", community="esc")["items"]
        found = [a["id"] for a in items if a["device_id"] == device_id]
        return found[0] if found else None

    alert_id: str = wait_for(find, 20, f"the alert of {device_id}")
    return alert_id


def _history(agent: AgentProcess, alert_id: str) -> list[dict[str, Any]]:
    history: list[dict[str, Any]] = agent.get(f"/v1/alerts/{alert_id}")["history"]
    return history


def _tiers(agent: AgentProcess, alert_id: str) -> list[tuple[str, str | None, bool]]:
    return [(e["kind"], e["tier"], e["notify"]) for e in _history(agent, alert_id)]


EXPECTED = [
    ("opened", "duty_officer", True),
    ("escalated", "property_manager", True),
    ("escalated", "emergency_contacts", True),
    ("acknowledged", None, True),
]


def _ack_once_contacts_are_told(agent: AgentProcess, alert_id: str) -> None:
    wait_for(
        lambda: any(e["tier"] == "emergency_contacts" for e in _history(agent, alert_id)),
        30,
        "the emergency contacts' step",
    )
    response = agent.post(f"/v1/alerts/{alert_id}/ack", {"note": "on my way"})
    assert response.status_code == 200, response.text


def test_an_unacknowledged_sos_climbs_the_tiers_until_acknowledged(
    tmp_path: Path, mosquitto_factory: MosquittoFactory
) -> None:
    broker = mosquitto_factory()
    with AgentProcess(tmp_path / "agent", broker.url, env=ENV) as agent:
        _press(broker.url, "sos-1")
        alert_id = _alert_id(agent, "sos-1")
        _ack_once_contacts_are_told(agent, alert_id)
        # a clock that must move: past the repeat that would have come 6 s after the last step
        time.sleep(7)
        assert _tiers(agent, alert_id) == EXPECTED
        history = _history(agent, alert_id)
        assert len({e["id"] for e in history}) == 4
        assert [e["actor"] for e in history] == ["rule", "escalation", "escalation", "api-token"]
        opened, manager, contacts, _ = (datetime.fromisoformat(e["at"]) for e in history)
        assert (manager - opened).total_seconds() >= 3
        assert (contacts - opened).total_seconds() >= 6
        summary = agent.get("/v1/summary", community="esc")["items"][0]
        assert (summary["escalations"], summary["acknowledged"]) == (2, 1)


def test_escalation_timers_survive_a_sigkill_and_restart(
    tmp_path: Path, mosquitto_factory: MosquittoFactory
) -> None:
    broker = mosquitto_factory()
    agent = AgentProcess(tmp_path / "agent", broker.url, env=ENV)
    agent.start()
    try:
        _press(broker.url, "sos-2")
        alert_id = _alert_id(agent, "sos-2")
        assert _tiers(agent, alert_id) == [("opened", "duty_officer", True)]
        agent.kill()  # within the first 3 s: the property manager's step is still to come
        killed_at = time.time()
        time.sleep(3)  # a clock that must move: the step falls due while nobody runs
        agent.start()
        _ack_once_contacts_are_told(agent, alert_id)
        time.sleep(7)  # a clock that must move: past the repeat that must not come
        assert _tiers(agent, alert_id) == EXPECTED  # each step once: none lost, none doubled
        manager = datetime.fromisoformat(_history(agent, alert_id)[1]["at"]).timestamp()
        assert manager > killed_at + 3  # fired by the restarted agent, from the stored timer
    finally:
        agent.__exit__(None, None, None)


def _cli(agent: AgentProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "silences",
            args[0],
            "--api",
            agent.url,
            "--token",
            TOKEN,
            *args[1:],
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_silences_from_the_command_line_hold_an_sos_quietly(
    tmp_path: Path, mosquitto_factory: MosquittoFactory
) -> None:
    broker = mosquitto_factory()
    with AgentProcess(tmp_path / "agent", broker.url, env=ENV) as agent:
        added = _cli(
            agent,
            "add",
            "--community",
            "esc",
            "--device",
            "sos-3",
            "--ends",
            "2099-01-01T00:00:00+00:00",
            "--reason",
            "battery swap",
            "--json",
        )
        assert added.returncode == 0, added.stderr
        silence_id = json.loads(added.stdout)["id"]
        _press(broker.url, "sos-3")
        alert_id = _alert_id(agent, "sos-3")
        # a clock that must move: steps come due meanwhile, all held by the silence
        time.sleep(4)
        assert _tiers(agent, alert_id) == [("opened", None, False)]
        listed = _cli(agent, "list")
        assert listed.returncode == 0
        assert silence_id in listed.stdout
        assert "battery swap" in listed.stdout
        assert _cli(agent, "expire", silence_id).returncode == 0
        assert _cli(agent, "expire", silence_id).returncode == 1  # already over: 409
        # the silence is over and nobody acknowledged: the first tier hears of it now
        # the next steps follow 3 s apart and a slow CLI call can outlast that: wait for the held
        # step, then check what came is the climb from the first tier, each step once, in order
        wait_for(lambda: len(_history(agent, alert_id)) >= 2, 10, "the held step")
        climb = [
            ("escalated", "duty_officer", True),
            ("escalated", "property_manager", True),
            ("escalated", "emergency_contacts", True),
        ]
        came = _tiers(agent, alert_id)[1:]
        assert came == climb[: len(came)]
        bad = _cli(agent, "add", "--community", "esc", "--reason", "no end")
        assert bad.returncode == 1
        assert "ends_at" in bad.stderr
