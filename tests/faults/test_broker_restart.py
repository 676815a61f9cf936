"""A broker restart under a session it gives back is reported, with a real mosquitto.

mosquitto restores the agent's sessions from its last save, so the agent reconnects to a present
session and MQTT says nothing of the restart; what the broker accepted after that save is gone.
The agent watches `$SYS/broker/uptime`: an uptime smaller than the time since it last looked is a
restart, counted per lane, logged, and shown on /healthz (the ACL as shipped lets it read that).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from tests.agent_process import AgentProcess, wait_for
from tests.faults.test_crashes import _broker
from tests.mqtt_recorder import sys_value
from tests.servers import MosquittoFactory

RESTARTS = "community_edge_mqtt_broker_restarts_total"
LANES = ("alarm", "telemetry")


def _restarts(agent: AgentProcess) -> dict[str, int]:
    metrics = agent.metrics()
    return {lane: int(metrics[f'{RESTARTS}{{lane="{lane}"}}']) for lane in LANES}


def _broker_uptime(url: str) -> AbstractContextManager[Callable[[], int]]:
    """The broker's `$SYS/broker/uptime` as last published (-1 before the first)."""
    return sys_value(url, "$SYS/broker/uptime", lambda payload: int(payload.split()[0]), -1)


def test_a_broker_restart_under_a_present_session_is_reported(
    tmp_path: Path, mosquitto_factory: MosquittoFactory
) -> None:
    broker = _broker(mosquitto_factory)  # persistence, autosave every 1 s, $SYS every 2 s
    with AgentProcess(tmp_path / "agent", broker.url) as agent:
        with _broker_uptime(broker.url) as uptime:
            # a broker up for a while: a restart is then plainly younger than the time since
            wait_for(lambda: uptime() >= 8, within_s=30, what="the broker up for 8 s")
        assert _restarts(agent) == {"alarm": 0, "telemetry": 0}
        broker.kill()  # a crash: the agent's sessions come back from the broker's last save
        broker.restart()
        wait_for(
            lambda: _restarts(agent) == {"alarm": 1, "telemetry": 1},
            within_s=30,
            what="the restart seen by both sessions",
        )
        sessions = agent.get("/healthz")["mqtt"]["sessions"]
        log = agent.log_path.read_text()
    assert log.count("restarted about") == 2  # one line per session
    assert "came back without our session" not in log  # the session was given back
    for lane in LANES:
        note = sessions[lane]["last_broker_restart"]
        assert note is not None
        assert "the broker restarted at" in note
        assert "are lost" in note
        assert sessions[lane]["broker_restarts"] == 1
