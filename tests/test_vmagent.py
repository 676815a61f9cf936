"""The agent's time-series sink writing through vmagent (Debian's `victoria-metrics` package) to a
real VictoriaMetrics: the InfluxDB write API is accepted and forwarded, a batch written twice is
still one sample each (deduplication happens behind vmagent), and vmagent's own flag list is not
taken for a VictoriaMetrics without deduplication."""

from __future__ import annotations

import uuid

import pytest

from edge.sinks import InfluxSink
from tests.servers import VictoriaMetricsServer, VmAgentServer
from tests.test_influx import _batch, _device
from tests.waiting import wait_until


async def test_points_written_through_vmagent_reach_victoria_metrics_once(
    victoria_metrics: VictoriaMetricsServer, caplog: pytest.LogCaptureFixture
) -> None:
    device_id = f"dev-{uuid.uuid4().hex[:12]}"  # the session's VictoriaMetrics is shared
    vmagent = VmAgentServer(victoria_metrics)
    vmagent.start()
    sink = InfluxSink(vmagent.url, org="o", bucket="b", token=None)
    try:
        batch = _batch(_device(device_id), 10)
        await sink.write_readings(batch)
        await sink.write_readings(batch)  # a retry after a lost 2xx
        # vmagent's /flags list no -dedup flag: not reported as a store without deduplication
        assert sink.store_problem is None
        assert "is vmagent" in caplog.text
        match = f'{{device_id="{device_id}"}}'
        # three fields a reading; forwarded within vmagent's flush interval (1 s)
        wait_until(
            lambda: victoria_metrics.count_samples(match) >= 3 * 10,
            10.0,
            "the points forwarded by vmagent",
            poll=0.3,
        )
        assert victoria_metrics.count_samples(match) == 3 * 10
    finally:
        await sink.close()
        vmagent.close()
