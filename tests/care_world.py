"""A simulated community of living-alone households over a month on a virtual clock, through the
agent's own pipeline (decode, enrich, rules with the shipped community rules, alert book, outbox,
alert store), household register and visits: normal daily rhythms, one fall found by the sign-of-
life rules with the water idle, one hospital stay marked away, and visits with some missed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson

from edge.agent import Agent, AgentConfig, Desk
from edge.clock import FakeClock
from edge.decode import ProfileRegistry, default_profile_dir
from edge.enrich import CareWorker, Condition, DeviceRegistry, Household, Resident, VisitSpec
from edge.ingest import parse_mqtt_url
from edge.model import AlertEvent, DeviceRef, RawMessage, Reading
from edge.rules import default_rules_file, load_rules_file

ZONE = ZoneInfo("Asia/Shanghai")
COMMUNITY = "sunshine"
PROFILES = ProfileRegistry.load(default_profile_dir())
WORKERS = (("wang-fang", "王芳"), ("li-na", "李娜"), ("zhao-min", "赵敏"), ("chen-jing", "陈静"))
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "秀英桂兰玉珍凤英淑珍建国德明志强丽华海燕"
TICK_S = 15 * 60.0  # the rules decide every 15 simulated minutes


@dataclass
class Story:
    """What happened, to check the report against."""

    fall: str = ""  # the household that fell
    hospital: str = ""  # the household away in hospital at the month's end
    missed: tuple[str, ...] = ()  # households nobody visited this month
    fall_alerts: list[str] = field(default_factory=list)
    messages: int = 0


def _at(day: int, hour: float) -> datetime:
    """Day 1.. of November 2026 at a local hour."""
    return datetime(2026, 11, 1, tzinfo=ZONE) + timedelta(days=day - 1, hours=hour)


def _devices(count: int) -> tuple[dict[str, DeviceRef], list[Household]]:
    devices: dict[str, DeviceRef] = {}
    homes: list[Household] = []
    rng = random.Random(18)
    for i in range(count):
        building, unit = f"b{i // 20 + 1}", f"{(i % 20) // 4 + 1}{(i % 4) + 1:02d}"
        ids = []
        for model, prefix in (
            ("zigbee-pir-motion", "pir"),
            ("water-flow-meter", "wtr"),
            ("zigbee-door-contact", "door"),
        ):
            device_id = f"{prefix}-{building}-{unit}"
            category = PROFILES.get(model).category
            devices[device_id] = DeviceRef(
                device_id, model, category, COMMUNITY, building, unit, slot=len(devices)
            )
            ids.append(device_id)
        worker, name = WORKERS[i % len(WORKERS)]
        homes.append(
            Household(
                community=COMMUNITY,
                building=building,
                unit=unit,
                floor=unit[0],
                residents=(Resident(name=rng.choice(SURNAMES) + rng.choice(GIVEN) + "奶奶"),),
                living_alone=True,
                device_ids=tuple(ids),
                care_worker=CareWorker(person_id=worker, name=name),
            )
        )
    return devices, homes


def _day_of(rng: random.Random, wake: float, bed: float) -> list[tuple[float, str]]:
    """One ordinary day: motion every 1.5-2 h from waking to bed, water morning, noon and
    evening, the door when she goes out to the market."""
    events: list[tuple[float, str]] = []
    hour = wake + rng.uniform(0.05, 0.2)
    while hour < bed:
        events.append((hour, "motion"))
        hour += rng.uniform(1.5, 2.0)
    events.append((bed - rng.uniform(0.0, 0.1), "motion"))
    for base in (wake + 0.3, 12.2, 18.3):
        events.append((base + rng.uniform(-0.15, 0.15), "water"))
    if rng.random() < 0.7:  # out to the market and back: the door opened and closed each time
        for at in (rng.uniform(9.0, 10.0), rng.uniform(11.0, 11.5)):
            events += [(at, "door_open"), (at + 0.02, "door_closed")]
    return sorted(events)


@dataclass
class CareWorld:
    """The agent in process over `data`, driven by a fake clock."""

    data: Path
    households: int = 200
    clock: FakeClock = field(default_factory=lambda: FakeClock(_at(1, 0).astimezone(UTC)))
    story: Story = field(default_factory=Story)

    async def run_month(self) -> None:
        devices, homes = _devices(self.households)
        config = AgentConfig(
            broker=parse_mqtt_url("mqtt://127.0.0.1:1"), client_id="care-gw", data_dir=self.data
        )
        rules = load_rules_file(default_rules_file(), PROFILES)
        agent = Agent(
            config, PROFILES, DeviceRegistry(devices), [], self.clock, community_rules=rules
        )
        async with agent:
            desk = Desk(agent)
            agent.households.put_many(homes, self.clock.now())
            agent.care_watch.check()
            await self._month(agent, desk, homes)

    async def _month(self, agent: Agent, desk: Desk, homes: list[Household]) -> None:
        rng = random.Random(2026)
        fall, hospital = homes[37], homes[121]
        missed = (homes[58], homes[163])
        self.story.fall, self.story.hospital = fall.id, hospital.id
        self.story.missed = tuple(h.id for h in missed)
        rhythm = {
            h.id: (rng.choice((6.5, 7.0, 7.5, 8.0)), rng.choice((20.5, 21.0, 21.5))) for h in homes
        }
        visit_day = {h.id: 1 + i % 28 for i, h in enumerate(homes)}
        visit_day[hospital.id] = 3  # before the hospital stay
        for day in range(1, 31):
            plan: list[tuple[datetime, Household, str]] = []
            for home in homes:
                if home.id == hospital.id and day >= 10:
                    continue  # in hospital from the 10th
                if home.id == fall.id and 19 <= day < 28:
                    if day > 19:
                        continue  # fell on the 19th at 19:40, in hospital until the 28th
                    wake, bed = rhythm[home.id]
                    plan += [(_at(day, h), home, k) for h, k in _day_of(rng, wake, bed) if h < 19.6]
                    continue
                wake, bed = rhythm[home.id]
                plan += [(_at(day, h), home, kind) for h, kind in _day_of(rng, wake, bed)]
            plan.sort(key=lambda p: p[0])
            await self._day(agent, desk, day, plan, homes, visit_day, missed)

    async def _day(
        self,
        agent: Agent,
        desk: Desk,
        day: int,
        plan: list[tuple[datetime, Household, str]],
        homes: list[Household],
        visit_day: dict[str, int],
        missed: tuple[Household, ...],
    ) -> None:
        end = _at(day + 1, 0)
        pending: list[Reading] = []
        events: list[AlertEvent] = []
        index = 0
        tick = self.clock.now() + timedelta(seconds=TICK_S)
        while tick <= end:
            while index < len(plan) and plan[index][0] <= tick:
                at, home, kind = plan[index]
                self._to(at)
                out = agent.pipeline.handle(self._message(home, kind))
                self.story.messages += 1
                if out.reading is not None:
                    pending.append(out.reading)
                events.extend(out.events)
                index += 1
            self._to(tick)
            if pending or events:
                await agent.outbox.commit(pending, events)
                pending, events = [], []
            for event in await agent.ticker.tick():
                await self._respond(agent, desk, event, homes)
            tick += timedelta(seconds=TICK_S)
        self._visits(agent, day, homes, visit_day, missed)
        if day == 9:  # planned surgery: away from tomorrow until 3 December, noon
            hospital = next(h for h in homes if h.id == self.story.hospital)
            until = _at(33, 12).astimezone(UTC)
            await desk.set_away(
                COMMUNITY, hospital.building, hospital.unit, True, until, "住院 hospital"
            )
        for forwarder in agent.forwarders:
            await forwarder.drain()

    def _to(self, at: datetime) -> None:
        delta = (at - self.clock.now()).total_seconds()
        if delta > 0:
            self.clock.advance(delta)

    def _message(self, home: Household, kind: str) -> RawMessage:
        model, payload = {
            "motion": ("zigbee-pir-motion", {"occupancy": True, "battery": 90}),
            "water": ("water-flow-meter", {"flow": 6.5, "water_consumed": 100.0, "battery": 88}),
            "door_open": ("zigbee-door-contact", {"contact": False, "battery": 91}),
            "door_closed": ("zigbee-door-contact", {"contact": True, "battery": 91}),
        }[kind]
        prefix = {"motion": "pir", "water": "wtr"}.get(kind, "door")
        device = f"{prefix}-{home.building}-{home.unit}"
        topic = f"ce/{COMMUNITY}/{home.building}/{model}/{device}"
        return RawMessage(topic=topic, payload=orjson.dumps(payload), received_at=self.clock.now())

    async def _respond(
        self, agent: Agent, desk: Desk, event: AlertEvent, homes: list[Household]
    ) -> None:
        """People answer the fall: the care worker for the first alert, the duty officer later."""
        alert = event.alert
        if event.kind != "opened":
            return
        assert alert.category == "household", f"unexpected alert {alert}"
        home = next(h for h in homes if h.building == alert.building and h.unit == alert.unit)
        self.story.fall_alerts.append(alert.rule)
        opened = self.clock.now()
        if alert.rule == "no-sign-of-life":
            worker = home.care_worker
            assert worker is not None
            self._to(opened + timedelta(minutes=8))
            await agent.acknowledge(
                alert.id, worker.person_id, "电话无人接听, 前往 no answer, going"
            )
            self._to(opened + timedelta(minutes=38))
            agent.visits.record(
                home,
                VisitSpec(
                    at=self.clock.now(),
                    condition=Condition.POOR,
                    note="卫生间跌倒, 已叫120 fell in the bathroom, ambulance called",
                    follow_up=True,
                    alert_id=alert.id,
                ),
                worker=worker.person_id,
                worker_name=worker.name,
                recorded_by="care-token",
                now=self.clock.now(),
            )
            self._to(opened + timedelta(minutes=55))
            await agent.resolve(alert.id, worker.person_id, "跌倒送医 fall, taken to hospital")
        else:
            self._to(opened + timedelta(minutes=4))
            await agent.acknowledge(alert.id, "duty-li", None)
            await agent.resolve(alert.id, "duty-li", "已住院 in hospital since the morning")
            await desk.set_away(
                COMMUNITY,
                home.building,
                home.unit,
                True,
                _at(28, 9).astimezone(UTC),
                "住院 hospital",
            )

    def _visits(
        self,
        agent: Agent,
        day: int,
        homes: list[Household],
        visit_day: dict[str, int],
        missed: tuple[Household, ...],
    ) -> None:
        skipped = {h.id for h in missed}
        for i, home in enumerate(homes):
            if visit_day[home.id] != day or home.id in skipped or home.care_worker is None:
                continue
            at = _at(day, 10 + (i % 12) * 0.5)
            agent.visits.record(
                home,
                VisitSpec(at=at, condition=Condition.GOOD, note="", follow_up=False),
                worker=home.care_worker.person_id,
                worker_name=home.care_worker.name,
                recorded_by="care-token",
                now=at,
            )
