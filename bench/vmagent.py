"""`python -m bench.vmagent [--messages N] [--rounds R]`: the agent writing its readings to
VictoriaMetrics straight, or through vmagent (Debian's `victoria-metrics` package) in front of it.

Each round runs both, one after the other (a shared machine drifts), on the same broker and
VictoriaMetrics: the agent's ingest phase of `python -m bench` (N messages of the mixed community
queued, the agent started, timed from its CONNACK until its tsdb sink has delivered N points),
then the points counted back in VictoriaMetrics. Through vmagent "delivered" means queued by
vmagent (it answers 204 then and forwards within its 1 s flush interval), so the count in
VictoriaMetrics is what says the points arrived. CPU is in % of one core during the ingest phase;
vmagent's own is measured beside it. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from bench.ingest import measure_ingest
from bench.machine import CpuMeter, load_average, process
from bench.progress import Probe
from bench.publish import PublisherPool
from bench.rig import Rig
from bench.traffic import Traffic, min_span_s, roster
from tests.servers import VmAgentServer

DEVICES = 2000  # the mixed community of `python -m bench`
MODES = ("straight", "vmagent")


def _traffic(community: str, messages: int) -> Traffic:
    members = roster(DEVICES, community)
    return Traffic(community, members, messages, min_span_s(messages, DEVICES), time.time())


def run(messages: int, rounds: int, publishers: int) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    with Rig() as rig:
        vmagent = VmAgentServer(rig.tsdb, directory=rig.root / "vmagent")
        vmagent.start()
        pool = PublisherPool(rig.broker.host, rig.broker.port, publishers)
        try:
            for n in range(rounds * len(MODES)):
                mode = MODES[n % len(MODES)]
                url = rig.tsdb.url if mode == "straight" else vmagent.url
                agent = rig.agent(f"agent-{n}", ["--tsdb-url", url])
                probe = Probe(agent)
                meter = CpuMeter({"vmagent": [process(vmagent.pid)]})
                meter.start()
                ingest = measure_ingest(rig, pool, probe, _traffic(f"bench-vm-{n}", messages))
                vmagent_cpu = meter.stop()["vmagent"]
                probe.close()
                rig.stop_agent(agent, forget=True)
                result = {
                    "mode": mode,
                    "messages": ingest.messages,
                    "stored": ingest.stored,
                    "msgs_per_s": round(ingest.rate),
                    "acked_msgs_per_s": round(ingest.acked_rate),
                    "cpu_pct": {
                        key: ingest.cpu[key] for key in ("agent", "tsdb", "machine", "others")
                    }
                    | {"vmagent": vmagent_cpu},
                }
                results.append(result)
                print(
                    f"{mode:8}  {result['msgs_per_s']:>6,} msgs/s delivered, "
                    f"{ingest.stored:,}/{ingest.messages:,} in VictoriaMetrics; CPU agent "
                    f"{ingest.cpu['agent']}%, VictoriaMetrics {ingest.cpu['tsdb']}%, vmagent "
                    f"{vmagent_cpu}%, machine {ingest.cpu['machine']}%",
                    flush=True,
                )
        finally:
            pool.close()
            vmagent.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.vmagent")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--publishers", type=int, default=2)
    args = parser.parse_args()
    before = load_average()
    results = run(args.messages, args.rounds, args.publishers)
    summary = {"load_before": before, "load_after": load_average(), "runs": results}
    print(json.dumps(summary))
    return 0 if all(r["stored"] == r["messages"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
