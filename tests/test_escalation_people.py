"""Escalation to people on a FakeClock: the person on duty at the shift handover in the community's
time zone, the next person on the roster when the first does not answer, a step that reaches
nobody (said on the alert, the next step at once), an acknowledgement that stops the calls about
an incident, and the per-person rate of a channel (one summary instead of a flood)."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge.alerts import AlertBook, EscalationPolicy, EscalationStep, Roster
from edge.clock import FakeClock
from edge.model import AlertEvent, AlertEventKind, Severity
from edge.sinks import Admission, PersonRate
from tests.lifecycle import SMOKE, SOS, book, device, raised

EXAMPLE = Path(__file__).resolve().parent.parent / "deploy" / "roster.example.yaml"
SHANGHAI_19_59_58 = datetime(2026, 12, 3, 11, 59, 58, tzinfo=UTC)  # a Thursday, 19:59:58 local

PEOPLE_POLICY = EscalationPolicy(
    severity=Severity.CRITICAL,
    steps=(
        EscalationStep(after_s=0, on_duty="garden-security"),
        EscalationStep(after_s=60, next_on_roster="here"),
        EscalationStep(after_s=120, person="chen-jing", tier="property_manager"),
    ),
)


class _NoChannel:
    console_only = False

    def __init__(self) -> None:
        self.down = False

    def unreached(self, event: AlertEvent) -> str | None:
        return "every channel that takes it is failing (wecom: down)" if self.down else None


def _book(clock: FakeClock, policy: EscalationPolicy = PEOPLE_POLICY, **kw: object) -> AlertBook:
    return book(clock, policy, roster=Roster.load(EXAMPLE), **kw)


def _run(alerts: AlertBook, clock: FakeClock, seconds: int) -> list[AlertEvent]:
    fired = []
    for _ in range(seconds):
        clock.advance(1)
        fired.extend(alerts.escalate_due())
    return fired


def test_the_person_on_duty_changes_at_the_shift_boundary_in_local_time() -> None:
    clock = FakeClock(SHANGHAI_19_59_58)
    alerts = _book(
        clock,
        EscalationPolicy(
            severity=Severity.CRITICAL,
            steps=(
                EscalationStep(after_s=0, on_duty="garden-security"),
                EscalationStep(after_s=5, on_duty="garden-security"),
            ),
        ),
    )
    opened = raised(alerts, SOS, device("sos-1", community="sunshine-garden"), clock)
    assert opened.people == ("li-wei",)  # the day shift, week of 2026-11-30
    assert "李伟 (on duty in garden-security, shift day)" in (opened.note or "")
    (handed_over,) = _run(alerts, clock, 5)  # 20:00:04 local: the night shift has it
    assert handed_over.people == ("zhang-san",)
    assert "张三 (on duty in garden-security, shift night)" in (handed_over.note or "")


def test_the_next_person_on_the_roster_when_the_first_does_not_answer() -> None:
    clock = FakeClock(datetime(2026, 12, 3, 2, 0, tzinfo=UTC))  # 10:00 local, day shift
    alerts = _book(clock)
    opened = raised(alerts, SOS, device("sos-1", community="sunshine-garden"), clock)
    assert (opened.kind, opened.people, opened.tier) == (AlertEventKind.OPENED, ("li-wei",), None)
    assert _run(alerts, clock, 59) == []
    (second,) = _run(alerts, clock, 1)
    assert (second.kind, second.people) == (AlertEventKind.ESCALATED, ("wang-fang",))
    assert "王芳 (next on the roster of garden-security)" in (second.note or "")
    (third,) = _run(alerts, clock, 60)
    assert (third.people, third.tier) == (("chen-jing",), "property_manager")
    assert "陈静, tier property_manager" in (third.note or "")


def test_a_step_that_reaches_nobody_says_so_and_the_next_fires_at_once() -> None:
    clock = FakeClock(datetime(2026, 12, 3, 2, 0, tzinfo=UTC))
    alerts = _book(clock)
    # another community: step 1 names garden-security, but no team answers for it "here"
    opened = raised(alerts, SOS, device("sos-9", community="elsewhere"), clock)
    assert opened.people == ("li-wei",)
    assert "reached nobody" not in (opened.note or "")
    clock.advance(60)
    events = alerts.escalate_due()
    # step 2 (next on the roster "here") reaches nobody: step 3 fires in the same round
    assert [(e.kind, e.people) for e in events] == [
        (AlertEventKind.ESCALATED, ()),
        (AlertEventKind.ESCALATED, ("chen-jing",)),
    ]
    assert "reached nobody: nobody is on duty in the teams of elsewhere/b1" in (
        events[0].note or ""
    )
    assert "the next step at once" in (events[0].note or "")
    assert alerts.unreached.count == 1
    assert "elsewhere/b1" in (alerts.unreached.last or "")


def test_every_channel_failing_is_reaching_nobody() -> None:
    clock = FakeClock(datetime(2026, 12, 3, 2, 0, tzinfo=UTC))
    reach = _NoChannel()
    alerts = _book(clock, reach=reach)
    reach.down = True
    opened = raised(alerts, SOS, device("sos-1", community="sunshine-garden"), clock)
    assert "reached nobody: every channel that takes it is failing" in (opened.note or "")
    assert opened.alert.next_escalation_at == clock.now()  # the next step is due at once
    reach.down = False
    (second,) = alerts.escalate_due()
    assert second.people == ("wang-fang",)
    assert "reached nobody" not in (second.note or "")


def test_an_acknowledgement_stops_the_calls_about_its_incident_not_another_sos() -> None:
    clock = FakeClock(datetime(2026, 12, 3, 2, 0, tzinfo=UTC))
    alerts = _book(clock)
    where = {"community": "sunshine-garden", "building": "b2"}
    smoke_1 = raised(alerts, SMOKE, device("smk-1", "smoke", **where), clock)
    smoke_2 = raised(alerts, SMOKE, device("smk-2", "smoke", **where), clock)
    sos_1 = raised(alerts, SOS, device("sos-1", **where), clock)
    sos_2 = raised(alerts, SOS, device("sos-2", **where), clock)
    assert smoke_1.alert.incident_id == smoke_2.alert.incident_id  # one fire
    alerts.acknowledge(smoke_1.alert.id, "李伟")
    alerts.acknowledge(sos_1.alert.id, "李伟")
    assert alerts.handled(smoke_2.alert.id) == "its incident acknowledged by 李伟"
    assert alerts.handled(sos_2.alert.id) is None  # another person in need
    fired = _run(alerts, clock, 60)
    assert [e.alert.id for e in fired] == [sos_2.alert.id]


@pytest.mark.parametrize(
    "step",
    [
        {"after_s": 0},
        {"after_s": 0, "person": "a", "on_duty": "t"},
    ],
)
def test_a_step_names_one_kind_of_someone(step: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="a step names"):
        EscalationStep.model_validate(step)


def test_one_person_gets_at_most_limit_plus_one_messages_per_period() -> None:
    clock = FakeClock(datetime(2026, 12, 3, 2, 0, tzinfo=UTC))
    rate = PersonRate(3, 600, clock.now)
    got = [rate.admit("li-wei") for _ in range(500)]
    kinds = [a for a, _ in got]
    assert kinds[:3] == [Admission.SEND] * 3
    assert kinds[3] is Admission.SUMMARY
    assert set(kinds[4:]) == {Admission.HOLD}
    summary = got[3][1]
    assert summary is not None
    assert (summary.person, summary.alerts) == ("li-wei", 4)
    assert rate.admit("wang-fang")[0] is Admission.SEND  # per person
    clock.advance(600)
    assert rate.admit("li-wei")[0] is Admission.SEND  # the period is over: one by one again


class _ConsoleOnly:
    console_only = True

    def unreached(self, event: AlertEvent) -> str | None:
        return "no notification channel is configured (channels:): the console only"


def test_a_console_only_gateway_says_so_and_keeps_the_schedule() -> None:
    clock = FakeClock(datetime(2026, 12, 3, 2, 0, tzinfo=UTC))
    alerts = _book(clock, reach=_ConsoleOnly())
    opened = raised(alerts, SOS, device("sos-1", community="sunshine-garden"), clock)
    assert "the console only" in (opened.note or "")
    assert "next step at once" not in (opened.note or "")
    assert alerts.escalate_due() == []  # step 2 stays at 60 s
    assert alerts.unreached.count == 1
    assert alerts.unreached.last_fault_at is None  # /healthz stays ok


def test_a_roster_change_is_taken_without_a_restart_and_a_broken_one_is_not(
    tmp_path: Path,
) -> None:
    path = tmp_path / "roster.yaml"
    path.write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    clock = FakeClock(datetime(2026, 12, 3, 2, 0, tzinfo=UTC))  # 10:00 local: 李伟's day shift
    roster = Roster.load(path)
    alerts = book(clock, PEOPLE_POLICY, roster=roster)
    assert raised(alerts, SOS, device("sos-1", community="sunshine-garden"), clock).people == (
        "li-wei",
    )
    cover = (
        "\n  - {team: garden-security, person: chen-jing, start: 2026-12-03T09:00:00+08:00,"
        " end: 2026-12-03T18:00:00+08:00, reason: covers for Li}\n"
    )
    path.write_text(path.read_text(encoding="utf-8") + cover, encoding="utf-8")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    assert roster.refresh()
    assert raised(alerts, SOS, device("sos-2", community="sunshine-garden"), clock).people == (
        "chen-jing",
    )
    path.write_text("people: [{id: x}]\n", encoding="utf-8")  # a person without a name
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 2_000_000))
    assert not roster.refresh()
    assert roster.last_error is not None
    assert "the roster read before holds" in roster.last_error
    assert roster.contact("chen-jing") is not None  # still the good one
