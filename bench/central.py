"""`python -m bench.central [--alerts N] [--clients C] [--seconds S] [--processes 1,2]`: GET
/v1/alerts latency of the central API with 1,000,000 alerts in PostgreSQL and 100 concurrent
clients, served by one process or several.

A private PostgreSQL (tests.servers.PostgresServer, fsync on) is migrated by `community-edge db
upgrade`, then the alerts table is filled with COPY (secondary indexes dropped during the load and
built after it, then ANALYZE). The API runs as users run it (`community-edge api`, one process);
the clients (asyncio + httpx, in this process) each loop for a bounded time over first pages and
the next page through the cursor, with a mix of tokens: one community (duty officer), five
communities (platform), every community (platform '*'). Not part of the test suite.

`--processes 1,2` measures each count in turn, twice over (1, 2, 1, 2: a shared machine drifts),
on the same loaded database: N `community-edge api` processes on N ports over one PostgreSQL and
one data dir (tokens and audit in SQLite, WAL: several processes of one host may share them), the
clients dealt round-robin across the ports as a load balancer in front would deal them. The
processes hold no state of their own between requests (a cursor is an opaque key of the store), so
any process may serve any page.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import Index

from bench.machine import cpu_seconds
from gateway.central.schema import alerts as alerts_table
from tests.central_process import CentralApiProcess
from tests.servers import PostgresServer

COMMUNITIES = 100
BUILDINGS = 20
SEVERITIES = ("critical", "major", "minor", "warning", "info")
STATUSES = ("resolved",) * 8 + ("acknowledged", "active")
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _rows(count: int, seed: int) -> Any:
    rng = random.Random(seed)
    span_ms = 365 * 24 * 3600 * 1000
    t0_ms = int(T0.timestamp() * 1000)
    for n in range(count):
        community = f"c{n % COMMUNITIES:03d}"
        building = f"b{rng.randrange(BUILDINGS):02d}"
        severity = SEVERITIES[rng.randrange(len(SEVERITIES))]
        status = STATUSES[rng.randrange(len(STATUSES))]
        rank = {"active": 0, "acknowledged": 1, "resolved": 2}[status]
        opened_ms = t0_ms + rng.randrange(span_ms)
        ack_ms = opened_ms + rng.randrange(30_000, 900_000) if status != "active" else None
        res_ms = (
            ack_ms + rng.randrange(60_000, 7_200_000) if status == "resolved" and ack_ms else None
        )
        updated_ms = res_ms or ack_ms or opened_ms
        alert_id = f"{community}-{n:07d}"

        def iso(ms: int | None) -> str | None:
            return None if ms is None else (T0 + timedelta(milliseconds=ms - t0_ms)).isoformat()

        body = {
            "id": alert_id,
            "key": f"sos|dev-{n}",
            "rule": "sos",
            "summary": "Emergency button pressed",
            "severity": severity,
            "status": status,
            "device_id": f"dev-{n}",
            "model": "tuya-sos-button",
            "category": "sos",
            "community": community,
            "building": building,
            "unit": f"{rng.randrange(1, 30)}-{rng.randrange(101, 2400)}",
            "opened_at": iso(opened_ms),
            "updated_at": iso(updated_ms),
            "last_seen_at": iso(opened_ms),
            "count": 1,
            "acknowledged_by": "duty" if ack_ms else None,
            "acknowledged_at": iso(ack_ms),
            "resolved_by": "duty" if res_ms else None,
            "resolved_at": iso(res_ms),
            "note": None,
        }
        yield (
            *(alert_id, community, building, body["unit"], body["device_id"], "sos", "sos"),
            *(severity, status, rank, opened_ms, updated_ms, ack_ms, res_ms, "bench"),
            json.dumps(body, separators=(",", ":")),
        )


def load(dsn: str, count: int) -> float:
    """COPY `count` alerts into a migrated, empty store; returns the seconds it took."""
    started = time.monotonic()
    secondary = [i for i in alerts_table.indexes if isinstance(i, Index)]
    columns = ", ".join(c.name for c in alerts_table.columns)
    with psycopg.connect(dsn) as conn:
        for index in secondary:
            conn.execute(f"DROP INDEX {index.name}")
        with conn.cursor().copy(f"COPY alerts ({columns}) FROM STDIN") as copy:
            for row in _rows(count, seed=1):
                copy.write_row(row)
        for index in secondary:
            cols = ", ".join(str(c.name) for c in index.columns)
            conn.execute(f"CREATE INDEX {index.name} ON alerts ({cols})")
        conn.commit()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE alerts")
    return time.monotonic() - started


async def _client(
    url: str, token: str, until: float, latencies: list[float], errors: list[int]
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30.0) as client:
        cursor: str | None = None
        while time.monotonic() < until:
            params: dict[str, Any] = {"limit": 50}
            if cursor is not None:
                params["cursor"] = cursor
            started = time.perf_counter()
            response = await client.get("/v1/alerts", params=params)
            latencies.append(time.perf_counter() - started)
            if response.status_code != 200:
                errors.append(response.status_code)
                cursor = None
                continue
            # a client reads up to five pages, then starts over at the newest
            cursor = response.json()["next_cursor"] if random.random() < 0.8 else None


async def run_clients(
    url: str | list[str], tokens: list[str], clients: int, seconds: float
) -> dict[str, Any]:
    """`clients` loops for `seconds`, dealt round-robin across `url` when it lists several."""
    urls = [url] if isinstance(url, str) else url
    latencies: list[float] = []
    errors: list[int] = []
    until = time.monotonic() + seconds
    started = time.monotonic()
    await asyncio.gather(
        *(
            _client(urls[n % len(urls)], tokens[n % len(tokens)], until, latencies, errors)
            for n in range(clients)
        )
    )
    elapsed = time.monotonic() - started
    ordered = sorted(latencies)
    q = statistics.quantiles(ordered, n=100)
    return {
        "requests": len(ordered),
        "errors": len(errors),
        "seconds": round(elapsed, 1),
        "rps": round(len(ordered) / elapsed, 1),
        "p50_ms": round(q[49] * 1000, 1),
        "p99_ms": round(q[98] * 1000, 1),
    }


def _family(pid: int) -> list[int]:
    """`pid` and its children (PostgreSQL's postmaster and its backends)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields and int(fields[1]) == pid:  # after the command: state, ppid
            children.append(int(stat.parent.name))
    return [pid, *children]


def _cpu(pids: list[int]) -> dict[int, float]:
    return {pid: cpu_seconds(f"/proc/{pid}/stat") for pid in pids}


def _used_pct(before: dict[int, float], after: dict[int, float], seconds: float) -> float:
    """% of one core: a process that started in between counts from 0."""
    used = sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())
    return round(100 * used / seconds, 1)


def _processes(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: process counts separated by commas") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: each count must be at least 1")
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.central")
    parser.add_argument("--alerts", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument(
        "--processes",
        type=_processes,
        default=[1],
        help="API process counts to compare, e.g. 1,2 (each measured twice, interleaved)",
    )
    args = parser.parse_args()
    rounds = args.processes if len(args.processes) == 1 else args.processes * 2
    results: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-central-") as tmp,
        PostgresServer(durable=True) as postgres,
    ):
        database = postgres.create_database("bench")
        url = postgres.url(database)
        migrate = [sys.executable, "-m", "gateway.cli", "db", "upgrade", "--store", url]
        subprocess.run(migrate, check=True, capture_output=True)
        load_s = load(postgres.dsn(database), args.alerts)
        print(f"loaded {args.alerts:,} alerts in {load_s:.1f} s (COPY, indexes built after)")
        data = Path(tmp) / "api"  # one data dir: the processes share its tokens and audit log
        first = CentralApiProcess(data, url)
        tokens = [
            first.create_token("duty_officer", "c007"),
            first.create_token("platform", *(f"c{n:03d}" for n in range(10, 15))),
            first.create_token("platform", "*"),
        ]
        for count in rounds:
            apis = [first, *(CentralApiProcess(data, url) for _ in range(count - 1))]
            try:
                for api in apis:
                    api.start()
                api_before = _cpu([a.pid for a in apis])
                pg_before = _cpu(_family(postgres.pid))
                clients_before = _cpu([os.getpid()])
                started = time.monotonic()
                result = asyncio.run(
                    run_clients([a.url for a in apis], tokens, args.clients, args.seconds)
                )
                elapsed = time.monotonic() - started
                result["cpu_pct"] = {
                    "api": _used_pct(api_before, _cpu([a.pid for a in apis]), elapsed),
                    "postgres": _used_pct(pg_before, _cpu(_family(postgres.pid)), elapsed),
                    "clients": _used_pct(clients_before, _cpu([os.getpid()]), elapsed),
                }
            finally:
                for api in apis:
                    if api.running:
                        api.stop()
            result = {"processes": count, **result}
            results.append(result)
            print(
                f"GET /v1/alerts (limit 50), {count} API process{'es' if count > 1 else ''}: "
                f"{args.clients} clients for {result['seconds']} s: {result['requests']:,} "
                f"requests ({result['rps']}/s), {result['errors']} errors, p50 "
                f"{result['p50_ms']} ms, p99 {result['p99_ms']} ms; CPU (% of one core) API "
                f"{result['cpu_pct']['api']}, PostgreSQL {result['cpu_pct']['postgres']}, clients "
                f"{result['cpu_pct']['clients']}, "
                f"load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    summary: dict[str, Any] = {"alerts": args.alerts, "load_s": round(load_s, 1)}
    if len(results) == 1:
        summary |= results[0]
    else:
        summary["runs"] = results
    print(json.dumps(summary))
    return 0 if all(r["errors"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
