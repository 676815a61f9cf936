"""`python -m bench.care`: the monthly care report for 10,000 households, and the memory of the
daily sign-of-life tracking per household.

Report: a community of `--households` living-alone households in the household register (SQLite),
a visit to 97 % of them, 3 alerts per 100 households (acknowledged, visited, resolved, a few left
to clear by themselves, some devices offline or low on battery) in the alert store; timed: reading
the month from the three stores, the figures, the CSV and the PDF.
Memory: the shipped rules (no-sign-of-life and water-idle, both learning each resident's day)
over `--memory-households` households after four weeks of signs; tracemalloc's growth per
household.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from edge.alerts import AlertStore
from edge.decode import ProfileRegistry, default_profile_dir
from edge.enrich import CareWorker, Condition, Household, HouseholdStore, VisitSpec, VisitStore
from edge.model import Alert, AlertEvent, AlertEventKind, AlertStatus, DeviceRef, Reading, Severity
from edge.rules import RuleEngine, default_rules_file, load_rules_file
from gateway.reports import build_report, month_alerts
from gateway.reports.csv_file import render_csv
from gateway.reports.pdf import render_pdf

ZONE = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 11, 1, tzinfo=ZONE)
END = datetime(2026, 12, 1, tzinfo=ZONE)
COMMUNITY = "bench-care"


def _homes(count: int) -> list[Household]:
    return [
        Household(
            community=COMMUNITY,
            building=f"b{i // 200 + 1}",
            unit=f"u{i % 200 + 1:03d}",
            living_alone=True,
            device_ids=(f"pir-{i}", f"wtr-{i}"),
            care_worker=CareWorker(person_id=f"worker-{i % 50}", name=f"助老员{i % 50}"),
        )
        for i in range(count)
    ]


def _alert(i: int, home: Household, rng: random.Random) -> Alert:
    opened = START + timedelta(seconds=rng.uniform(0, (END - START).total_seconds() - 7200))
    kind = rng.choice(("household", "household", "water", "sos", "door"))
    rule = {
        "household": "no-sign-of-life",
        "water": "low-battery",
        "sos": "sos",
        "door": "device-offline",
    }[kind]
    acked = rng.random() < 0.95
    return Alert(
        id=f"a{i}",
        key=f"{rule}|{home.device_ids[0]}",
        rule=rule,
        summary=rule,
        severity=Severity.MAJOR,
        status=AlertStatus.RESOLVED,
        device_id=home.device_ids[0] if kind != "household" else f"household:{home.unit}",
        model="m",
        category=kind,
        community=COMMUNITY,
        building=home.building,
        unit=home.unit,
        opened_at=opened,
        updated_at=opened + timedelta(hours=1),
        last_seen_at=opened,
        acknowledged_by="duty" if acked else None,
        acknowledged_at=opened + timedelta(seconds=rng.uniform(30, 900)) if acked else None,
        resolved_by="duty" if acked else "device",
        resolved_at=opened + timedelta(hours=1),
        note="ok" if acked else None,
    )


def measure_report(households: int) -> dict[str, float]:
    rng = random.Random(18)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        register = HouseholdStore(data / "households.db")
        visits = VisitStore(data / "visits.db")
        alerts = AlertStore(data / "alerts.db")
        homes = _homes(households)
        register.put_many(homes, START)
        for home in homes:
            if rng.random() < 0.97:
                at = START + timedelta(days=rng.uniform(0, 29))
                assert home.care_worker is not None
                visits.record(
                    home,
                    VisitSpec(at=at, condition=Condition.GOOD),
                    worker=home.care_worker.person_id,
                    worker_name=home.care_worker.name,
                    recorded_by="bench",
                    now=at,
                )
        raised = [_alert(i, rng.choice(homes), rng) for i in range(households * 3 // 100)]
        alerts.apply(
            [
                AlertEvent(
                    id=f"e{a.id}",
                    kind=AlertEventKind.RESOLVED,
                    at=a.updated_at,
                    actor="duty",
                    alert=a,
                )
                for a in raised
            ]
        )
        started = time.perf_counter()
        cpu = time.process_time()
        listed = register.list([COMMUNITY])
        month_visits = visits.list(communities=[COMMUNITY], since=START, until=END, limit=10**7)
        month = month_alerts(
            lambda c: alerts.list(communities=[COMMUNITY], limit=500, cursor=c), START, END
        )
        loaded = time.perf_counter()
        report = build_report(COMMUNITY, 2026, 11, ZONE, listed, month_visits, month, END)
        built = time.perf_counter()
        csv = render_csv(report)
        csv_done = time.perf_counter()
        pdf = render_pdf(report)
        pdf_done = time.perf_counter()
        cpu_s = time.process_time() - cpu
        for store in (register, visits, alerts):
            store.close()
    return {
        "care_report_households": households,
        "care_report_alerts": len(month),
        "care_report_load_s": round(loaded - started, 3),
        "care_report_build_s": round(built - loaded, 3),
        "care_report_csv_s": round(csv_done - built, 3),
        "care_report_pdf_s": round(pdf_done - csv_done, 3),
        "care_report_total_s": round(pdf_done - started, 3),
        # CPU seconds of this process: what the wall-clock figures cost on a machine not shared
        "care_report_cpu_s": round(cpu_s, 3),
        "care_report_pdf_bytes": len(pdf),
        "care_report_csv_bytes": len(csv),
    }


def measure_memory(households: int, days: int = 28) -> dict[str, float]:
    profiles = ProfileRegistry.load(default_profile_dir())
    rules = load_rules_file(default_rules_file(), profiles)
    places = [f"{COMMUNITY}/b{i // 200 + 1}/u{i % 200 + 1:03d}" for i in range(households)]
    devices = []
    for place in places:
        _, building, unit = place.split("/")
        devices.append(
            (
                DeviceRef(f"pir-{place}", "zigbee-pir-motion", "motion", COMMUNITY, building, unit),
                DeviceRef(f"wtr-{place}", "water-flow-meter", "water", COMMUNITY, building, unit),
            )
        )
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    engine = RuleEngine(profiles, rules)
    engine.care_for(places)
    start = START.astimezone(UTC)
    engine.tick(start)
    for day in range(days):
        for hour, which, fields in (
            (8, 0, {"motion": True}),
            (12, 1, {"flow": 5.0}),
            (19, 0, {"motion": True}),
            (20, 1, {"flow": 4.0}),
        ):
            at = start + timedelta(days=day, hours=hour)
            for pair in devices:
                engine.evaluate(Reading(device=pair[which], fields=fields, at=at, received_at=at))
        engine.tick(start + timedelta(days=day, hours=21))
        engine.flush()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    community, building, unit = places[0].split("/")
    views = engine.rhythm_of(community, building, unit, start + timedelta(days=days))
    return {
        "sign_of_life_households": households,
        "sign_of_life_rules": len(views),
        "sign_of_life_bytes_per_household": round(grown / households),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=10_000)
    parser.add_argument("--memory-households", type=int, default=2_000)
    args = parser.parse_args()
    results = {**measure_memory(args.memory_households), **measure_report(args.households)}
    for key, value in results.items():
        print(f"{key:36} {value}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
