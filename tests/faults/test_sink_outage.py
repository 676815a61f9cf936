"""The time-series server stopped for longer than influxdb-client's own retry budget (5 retries),
under steady load: everything acknowledged is kept, /readyz says so, and all of it arrives after.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.agent_process import AgentProcess, wait_for
from tests.servers import MosquittoServer, VictoriaMetricsFactory

OUTAGE_S = 20.0


def test_a_long_time_series_outage_under_load_loses_nothing(
    tmp_path: Path, mosquitto: MosquittoServer, victoria_metrics_factory: VictoriaMetricsFactory
) -> None:
    community = "fault-tsdb-outage"
    tsdb = victoria_metrics_factory()
    env = {"COMMUNITY_EDGE_READINESS__MAX_SINK_FAILURE_S": "3"}
    with AgentProcess(tmp_path / "agent", mosquitto.url, ["--tsdb-url", tsdb.url], env) as agent:
        load = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway.cli",
                "simulate",
                "--mqtt-url",
                mosquitto.url,
                "--profile",
                "tuya-sos-button",
                "--devices",
                "50",
                "--rate",
                "250",
                "--duration",
                str(OUTAGE_S + 6),
                "--community",
                community,
                "--json",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        series = f'{{__name__="sos_battery",community="{community}"}}'
        wait_for(lambda: tsdb.count_samples(series) > 0, what="the load stored in tsdb")
        tsdb.stop()  # a clean stop: VictoriaMetrics keeps what it had acknowledged
        stopped = time.monotonic()
        wait_for(
            lambda: httpx.get(f"{agent.url}/readyz").status_code == 503, what="/readyz says 503"
        )
        problems = httpx.get(f"{agent.url}/readyz").json()["problems"]
        assert any("sink tsdb failing" in p for p in problems)
        # the point: an outage longer than influxdb-client's own retry budget
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped)))
        errors = agent.metrics()['community_edge_sink_errors_total{sink="tsdb"}']
        assert errors > 5  # more attempts than influxdb-client's own retry budget
        tsdb.restart()
        output, _ = load.communicate(timeout=120)
        sent = int(json.loads(output.strip().splitlines()[-1])["sent"])
        backlog = 'community_edge_outbox_depth{lane="readings",sink="tsdb"}'
        wait_for(lambda: agent.metrics()[backlog] == 0, within_s=60, what="backlog drained")
        agent.wait_ready()
    stored = tsdb.count_samples(series)
    print(f"tsdb outage {OUTAGE_S:.0f} s: published {sent}, stored {stored}, retries {errors:.0f}")
    assert stored == sent
