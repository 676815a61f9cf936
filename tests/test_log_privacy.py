"""#20 finding 7 and RELIABILITY.md trap 9: after a run with residents' names and phone numbers in
payloads and in the registry (the agent killed with SIGKILL mid-run and restarted, dead letters,
an unregistered device, an alert, reads of personal data), the agent's log at DEBUG holds none
of them.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.agent_process import AgentProcess, wait_for
from tests.mqtt_publisher import publish
from tests.servers import MosquittoServer

NAMES = ["张三丰", "李四", "王芳", "Li Na"]
PHONES = ["13812345678", "13912345678", "13800138000", "13900139000"]
REGISTRY = """device_id,model,community,building,unit,install_date,resident_ref,emergency_contacts
sos-b01-101,tuya-sos-button,logscan,b01,101,2026-03-01,R-0042,Li Na:13800138000; 王芳:13900139000
"""


def _messages(round_: int) -> list[tuple[str, bytes]]:
    registered = "ce/logscan/b01/tuya-sos-button/sos-b01-101"
    personal = f"张三丰 13812345678 #{round_}"
    return [
        (registered, orjson.dumps({"action": "emergency", "battery": personal})),  # wrong_type
        (registered, orjson.dumps({"action": "emergency", "state": "李四 13912345678"})),
        (registered, personal.encode()),  # not JSON
        (  # a device the registry does not know
            f"ce/logscan/b01/tuya-sos-button/sos-{round_}",
            orjson.dumps({"action": "emergency", "name": personal}),
        ),
        (registered, orjson.dumps({"action": "emergency", "battery": 80, "note": personal})),
    ]


@pytest.mark.broker
def test_no_name_or_phone_reaches_the_log(tmp_path: Path, mosquitto: MosquittoServer) -> None:
    devices = tmp_path / "devices.csv"
    devices.write_text(REGISTRY, encoding="utf-8")
    agent = AgentProcess(
        tmp_path / "agent", mosquitto.url, ["--devices", str(devices), "--log-level", "DEBUG"]
    )
    try:
        agent.start()
        publish(mosquitto.url, _messages(1))
        wait_for(lambda: len(agent.get("/v1/dead-letters")) >= 4, what="first dead letters")
        publish(mosquitto.url, _messages(2))
        agent.kill()  # mid-run: whatever was not acknowledged comes again
        agent.start()
        publish(mosquitto.url, _messages(3))
        wait_for(lambda: len(agent.get("/v1/dead-letters")) >= 12, what="every dead letter")
        alerts = agent.get("/v1/alerts", community="logscan")["items"]
        assert [a["device_id"] for a in alerts] == ["sos-b01-101"]  # one SOS, deduplicated
        device = agent.get("/v1/devices/sos-b01-101")  # admin: contacts masked, read audited
        assert device["emergency_contacts"][0]["phone"] == "138****8000"
        assert {u["cause"] for u in agent.get("/v1/devices/unregistered")} == {"unknown_device"}
    finally:
        if agent._process is not None and agent._process.poll() is None:
            assert agent.stop() == 0
    log = agent.log_path.read_text(encoding="utf-8", errors="replace")
    assert "dead letter (wrong_type)" in log  # the run did log what went wrong...
    assert "DEBUG" in log
    found = [word for word in (*NAMES, *PHONES) if word in log]
    assert not found, f"personal data in the log: {found}"  # ...and never who or whose number
