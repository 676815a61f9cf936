"""Family of elderly residents and the rules of reach at a channel: an SOS nobody on duty
acknowledges reaches the household's family at each member's minute, once (a restart tells nobody
twice); the family's link page shows that alert and nothing of the household or others; a channel
drops a queued call about an alert someone has taken, and a personal channel sends one summary
instead of a flood."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from edge.agent import Agent, AgentConfig, FamilyCaller, parse_family_person_id
from edge.alerts import AlertBook
from edge.clock import FakeClock
from edge.enrich import DeviceRegistry, FamilyContact, Household, HouseholdStore, Resident
from edge.ingest import parse_mqtt_url
from edge.model import AlertEvent, AlertEventKind, Lane, Reading
from edge.sinks import (
    AliyunVoice,
    Card,
    Channel,
    DeliveryLog,
    Everyone,
    Listed,
    PersonRate,
    PhoneBook,
    PhoneSink,
    ReachSummary,
    Route,
)
from edge.sinks.channels.route import SHANGHAI
from gateway.action_links import ActionLinks
from gateway.api import create_app
from gateway.notification_links import NotificationLinks
from gateway.people import PeopleDirectory
from tests.lifecycle import CRITICAL_POLICY, SOS, START, book, device, raised
from tests.test_api import PROFILES, TOKEN, _clock, _Gateway, _sos
from tests.test_api import SOS as SOS_PAYLOAD

HOME = Household(
    community="c1",
    building="b1",
    unit="3-201",
    residents=(Resident(name="赵奶奶", phone="13500001111"),),
    living_alone=True,
    device_ids=("sos-1",),
    family=(
        FamilyContact(name="赵小红", relation="女儿", phone="13900002222", call_after_minutes=10),
        FamilyContact(name="赵大伟", relation="儿子", phone="13900003333", call_after_minutes=20),
        FamilyContact(name="邻居", relation="邻居", phone="13900004444", call_after_minutes=None),
    ),
)
NEIGHBOURS = Household(
    community="c1",
    building="b1",
    unit="3-202",
    residents=(Resident(name="钱爷爷"),),
    device_ids=("sos-2",),
)


@pytest.fixture
def households(tmp_path: Path) -> Iterator[HouseholdStore]:
    store = HouseholdStore(tmp_path / "households.db")
    store.put(HOME, START)
    store.put(NEIGHBOURS, START)
    yield store
    store.close()


def _minutes(caller: FamilyCaller, clock: FakeClock, minutes: int) -> list[AlertEvent]:
    fired = []
    for _ in range(minutes * 6):
        clock.advance(10)
        fired.extend(caller.due())
    return fired


def test_the_family_is_reached_at_each_members_minute_once(households: HouseholdStore) -> None:
    clock = FakeClock(START)
    alerts = book(clock, CRITICAL_POLICY)
    caller = FamilyCaller(alerts, households, clock)
    opened = raised(alerts, SOS, device("sos-1"), clock)
    assert _minutes(caller, clock, 9) == []
    (daughter,) = _minutes(caller, clock, 1)
    assert (daughter.kind, daughter.tier, daughter.people) == (
        AlertEventKind.ESCALATED,
        "family",
        ("family:c1/b1/3-201#0",),
    )
    assert "(女儿)" in (daughter.note or "")
    assert "赵小红" not in (daughter.note or "")  # relations in the history, never names
    assert daughter.alert.family_notified == 1
    # a restart: the book restored from the open alerts tells her not again
    restored = AlertBook(clock, alerts.open_alerts(), policies=alerts.policies)
    again = FamilyCaller(restored, households, clock)
    (son,) = _minutes(again, clock, 10)
    assert son.people == ("family:c1/b1/3-201#1",)
    assert _minutes(again, clock, 60) == []  # the neighbour is kept for information only
    # a neighbour's SOS, in a household without family: nobody is called
    raised(restored, SOS, device("sos-2"), clock)
    assert _minutes(again, clock, 30) == []
    assert opened.alert.id == son.alert.id


def test_an_acknowledged_sos_calls_no_family(households: HouseholdStore) -> None:
    clock = FakeClock(START)
    alerts = book(clock, CRITICAL_POLICY)
    caller = FamilyCaller(alerts, households, clock)
    opened = raised(alerts, SOS, device("sos-1"), clock)
    clock.advance(9 * 60)
    alerts.acknowledge(opened.alert.id, "李伟")
    assert _minutes(caller, clock, 30) == []


def test_a_family_id_reads_back_to_the_member(households: HouseholdStore) -> None:
    directory = PeopleDirectory(None, lambda: households)
    member = directory.contact("family:c1/b1/3-201#1")
    assert member is not None
    assert (member.name, member.phone) == ("赵大伟", "13900003333")
    assert directory.contact("family:c1/b1/3-201#7") is None
    assert directory.contact("li-wei") is None  # no roster
    assert parse_family_person_id("li-wei") is None


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[tuple[_Gateway, ActionLinks]]:
    data = tmp_path / "data"
    config = AgentConfig(
        broker=parse_mqtt_url("mqtt://127.0.0.1:1"), client_id="family", data_dir=data
    )
    agent = Agent(config, PROFILES, DeviceRegistry(), [], _clock())
    links = ActionLinks(data)
    async with agent:
        agent.households.put(HOME, agent.clock.now())
        agent.households.put(NEIGHBOURS, agent.clock.now())
        app = create_app(agent, TOKEN, action_links=links)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            yield _Gateway(agent, agent.clock, client), links  # type: ignore[arg-type]
    links.close()


async def test_the_familys_link_shows_the_alert_and_nothing_of_any_household(
    gateway: tuple[_Gateway, ActionLinks],
) -> None:
    world, links = gateway
    alert_id = await world.open_alert(_sos("sos-1"), SOS_PAYLOAD)
    await world.open_alert(_sos("sos-2"), SOS_PAYLOAD)  # the neighbours' alert
    alert = world.agent.alerts.get(alert_id)
    assert alert is not None
    maker = NotificationLinks(
        links,
        "http://gw",
        now=lambda: datetime.now(UTC),
        life_safety_minutes=15,
        other_minutes=240,
    )
    daughter = PeopleDirectory(None, lambda: world.agent.households).contact("family:c1/b1/3-201#0")
    assert daughter is not None
    assert maker.link(alert, "resolve", daughter) is None  # closing it is for the staff
    url = maker.link(alert, "ack", daughter)
    assert url is not None
    page = await world.client.get(url.removeprefix("http://gw"))
    assert page.status_code == 200
    assert "赵小红" in page.text  # whom the link acts as
    for private in ("3-201", "3-202", "赵奶奶", "钱爷爷", "13500001111", "13900002222", "sos-2"):
        assert private not in page.text, private
    done = await world.client.post(url.removeprefix("http://gw"))
    assert done.status_code == 200
    acknowledged = world.agent.alerts.get(alert_id)
    assert acknowledged is not None
    assert acknowledged.acknowledged_by == "赵小红"


class _PhoneSink:
    """A channel that reaches one person at a time (SMS, voice), as the phone channels are."""

    name = "phone"
    lanes: frozenset[Lane] = frozenset({"events"})
    personal = True

    def __init__(self) -> None:
        self.events: list[AlertEvent] = []
        self.summaries: list[ReachSummary] = []

    async def write_events(self, events: Sequence[AlertEvent]) -> None:
        self.events.extend(events)

    async def write_readings(self, readings: Sequence[Reading]) -> None:
        return None

    async def write_summary(self, summary: ReachSummary) -> None:
        self.summaries.append(summary)

    async def close(self) -> None:
        return None


def _opened(n: int, people: tuple[str, ...]) -> AlertEvent:
    clock = FakeClock(START + timedelta(seconds=n))
    event = raised(book(clock, CRITICAL_POLICY), SOS, device(f"sos-{n}"), clock)
    return event.model_copy(update={"people": people})


async def test_a_queued_call_about_an_alert_someone_took_is_not_sent(tmp_path: Path) -> None:
    sink = _PhoneSink()
    log = DeliveryLog(tmp_path / "deliveries.db", now=lambda: START)
    taken = {"alert": ""}
    channel = Channel(
        sink,
        Route(),
        log,
        handled=lambda e: "acknowledged by 王芳" if e.alert.id == taken["alert"] else None,
    )
    first, second = _opened(1, ("li-wei",)), _opened(2, ("li-wei",))
    taken["alert"] = first.alert.id
    await channel.write_events([first, second])
    assert [e.alert.id for e in sink.events] == [second.alert.id]
    (skipped,) = await log.for_alert(first.alert.id)
    assert (skipped.result, skipped.reason) == ("skipped", "not sent: acknowledged by 王芳")
    await log.close()


async def test_a_personal_channel_sends_one_summary_instead_of_a_flood() -> None:
    sink = _PhoneSink()
    clock = FakeClock(START)
    channel = Channel(sink, Route(), None, person_rate=PersonRate(2, 600, clock.now))
    flood = [_opened(n, ("li-wei",)) for n in range(500)]
    for start in range(0, 500, 50):  # in batches, as the forwarder hands them over
        await channel.write_events(flood[start : start + 50])
    assert len(sink.events) == 2
    (summary,) = sink.summaries
    assert (summary.person, summary.alerts) == ("li-wei", 3)
    assert channel.skipped == 498  # 2 sent; the 3rd became the summary; none of them a call
    assert channel.summaries_sent == 1


async def test_a_tier_step_flood_counts_the_channels_own_people_and_sends_one_summary() -> None:
    sink = _PhoneSink()
    desk = Listed([Card("desk", "值班室", "02100000000"), Card("li-wei", "李伟", "13812345678")])
    clock = FakeClock(START)
    channel = Channel(sink, Route(), None, person_rate=PersonRate(2, 600, clock.now), audience=desk)
    flood = [_opened(n, ()) for n in range(500)]  # a tier step: the event names nobody
    for start in range(0, 500, 50):
        await channel.write_events(flood[start : start + 50])
    assert [e.people for e in sink.events] == [("desk", "li-wei")] * 2
    assert sorted((s.person, s.alerts) for s in sink.summaries) == [("desk", 3), ("li-wei", 3)]
    assert channel.skipped == 498


async def test_a_phone_channel_calls_the_people_a_step_named_else_its_own(
    households: HouseholdStore, tmp_path: Path
) -> None:
    desk = Listed([Card("desk", "值班室", "02100000000")])
    people = Everyone([desk, PeopleDirectory(None, lambda: households)], [desk])
    phones = PhoneBook(tmp_path / "phone-sends.db")
    voice = AliyunVoice("voice", "key", "secret", tts_code="TTS_1", endpoint="http://127.0.0.1:9")
    sink = PhoneSink("voice", voice, people, phones, zone=SHANGHAI, audience=people)
    family = _opened(1, ("family:c1/b1/3-201#0", "family:c1/b1/3-201#9"))
    assert [(c.id, c.name, c.phone) for c in sink.people(family)] == [
        ("family:c1/b1/3-201#0", "赵小红", "13900002222")
    ]  # an id the register no longer has is left out
    assert [(c.id, c.phone) for c in sink.people(_opened(2, ()))] == [("desk", "02100000000")]
    await sink.close()
    phones.close()
